import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode } from '../host/abi/codec.js';
import { HOST_OWNED_HEADERS, headerNameProblem, headerValueProblem, isFinalStatus } from '../host/abi/http-fields.js';
import { OUTPUT_PARSERS, parseChunkOutput, parseInterceptorOutput, parseLlmPostOutput, parseTransportPostOutput, parseTransportPreOutput } from '../host/abi/outputs.js';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';

// The validator for what a plugin puts into HTTP (host/abi/http-fields.ts,
// applied by host/abi/outputs.ts). The gateway-level behaviour (status, metrics,
// keep-alive) is in chaos-http-framing.test.ts.

/** Asserts that parsing refuses the output as plugin_bad_output with a message matching `says`. */
function refused(parse: () => unknown, says: RegExp): void {
  assert.throws(parse, (e: unknown) => {
    assert.ok(e instanceof GatewayError);
    assert.equal(e.code, ErrorCode.pluginBadOutput);
    assert.match(e.message, says);
    return true;
  });
}

describe('header names', () => {
  it('accepts RFC 9110 tokens', () => {
    for (const name of ['x-trace', 'Content-Type', "x!#$%&'*+-.^_`|~09AZaz"]) assert.equal(headerNameProblem(name), null, name);
  });

  it('refuses empty names and names with separators, spaces, controls or non-ASCII', () => {
    assert.match(headerNameProblem('') ?? '', /the name is empty/);
    assert.match(headerNameProblem('bad header') ?? '', /not an RFC 9110 token: U\+0020 at index 3/);
    assert.match(headerNameProblem('x:evil') ?? '', /not an RFC 9110 token: ":" \(U\+003A\) at index 1/);
    assert.match(headerNameProblem('x\r\ny') ?? '', /CR \(U\+000D\) at index 1/);
    assert.match(headerNameProblem('x\u0000') ?? '', /NUL \(U\+0000\) at index 1/);
    assert.match(headerNameProblem('caf\u00e9') ?? '', /"é" \(U\+00E9\) at index 3/);
    for (const name of ['(x)', 'a/b', 'a@b', 'a"b', 'a{b}', 'x\ty', 'x\u007f']) assert.notEqual(headerNameProblem(name), null, name);
  });
});

describe('header values', () => {
  it('accepts visible ASCII, spaces, HTAB and Latin-1 (obs-text)', () => {
    for (const value of ['', 'plain', 'a b\tc', '</a.css>; rel=preload', 'caf\u00e9', '\u00ff', '"quoted", (commented)']) {
      assert.equal(headerValueProblem(value), null, JSON.stringify(value));
    }
  });

  it('refuses CR, LF, NUL, DEL and every other control character', () => {
    assert.match(headerValueProblem('a\r\nx-injected: 1') ?? '', /CR \(U\+000D\) at index 1/);
    assert.match(headerValueProblem('a\nb') ?? '', /LF \(U\+000A\) at index 1/);
    assert.match(headerValueProblem('\u0000') ?? '', /NUL \(U\+0000\) at index 0/);
    assert.match(headerValueProblem('a\u007f') ?? '', /DEL \(U\+007F\) at index 1/);
    for (let c = 0; c < 0x20; c++) if (c !== 0x09) assert.notEqual(headerValueProblem(`ok${String.fromCharCode(c)}`), null, `U+${c.toString(16)}`);
  });

  it('refuses anything beyond Latin-1, naming the code point', () => {
    assert.match(headerValueProblem('5 \u20ac') ?? '', /U\+20AC at index 2, beyond Latin-1/);
    assert.match(headerValueProblem('\u0100') ?? '', /U\+0100 at index 0/);
    assert.match(headerValueProblem('x\u{1f600}') ?? '', /U\+1F600 at index 1/);
  });
});

describe('statuses a plugin may set', () => {
  it('are the final ones, 200-599', () => {
    for (const s of [200, 204, 301, 404, 499, 599]) assert.equal(isFinalStatus(s), true, String(s));
    for (const s of [100, 101, 103, 199, 600, 0, -200, 200.5, Number.NaN]) assert.equal(isFinalStatus(s), false, String(s));
  });
});

describe('outputs that would break HTTP are refused whole, naming the field', () => {
  const BODY = new Uint8Array([104, 105]);

  it('short-circuit response: headers and status', () => {
    const pre = (response: unknown) => () => parseTransportPreOutput(encode({ response }));
    refused(pre({ status: 200, headers: { 'x-evil': 'a\r\nb' }, body: BODY }), /^http_transport_pre_hook output at response\.headers\["x-evil"\]: the value contains CR/);
    refused(pre({ headers: { '': 'x' } }), /response\.headers\[""\]: the name is empty/);
    refused(pre({ status: 103 }), /response\.status: expected a final HTTP status \(200-599\), got 103/);
    refused(pre({ status: '200' }), /response\.status: expected a final HTTP status \(200-599\), got str/);
    assert.deepEqual(parseTransportPreOutput(encode({ response: { status: 418, headers: { 'x-ok': 'caf\u00e9' }, body: BODY } })).response?.headers, { 'x-ok': 'caf\u00e9' });
  });

  it('the framing headers belong to the gateway, in any case, in responses and request patches', () => {
    for (const name of HOST_OWNED_HEADERS) {
      const upper = name.toUpperCase();
      refused(() => parseTransportPreOutput(encode({ response: { headers: { [upper]: '5' } } })), new RegExp(`response\\.headers\\["${upper}"\\]: ${name} is set by the gateway`));
      refused(() => parseTransportPostOutput(encode({ resp: { headers: { [name]: 'x' } } })), new RegExp(`resp\\.headers\\["${name}"\\]: ${name} is set by the gateway`));
      refused(() => parseTransportPreOutput(encode({ req: { headers: { [name]: 'x' } } })), new RegExp(`req\\.headers\\["${name}"\\]`));
    }
    // Removing one (nil) changes nothing the gateway sends, so it is not an error.
    assert.deepEqual(parseTransportPostOutput(encode({ resp: { headers: { 'content-length': null } } })).resp?.headers, { 'content-length': null });
  });

  it('request patches: header names, values and the method', () => {
    refused(() => parseTransportPreOutput(encode({ req: { headers: { 'x-wat': 'a\nb' } } })), /req\.headers\["x-wat"\]: the value contains LF/);
    refused(() => parseTransportPreOutput(encode({ req: { headers: { 'x y': null } } })), /req\.headers\["x y"\]: the name is not an RFC 9110 token/);
    refused(() => parseTransportPreOutput(encode({ req: { method: 'GET /admin HTTP/1.1\r\n' } })), /req\.method: expected an HTTP method/);
    assert.equal(parseTransportPreOutput(encode({ req: { method: 'PATCH' } })).req?.method, 'PATCH');
  });

  it('post-hook patches: headers and status', () => {
    refused(() => parseTransportPostOutput(encode({ resp: { status: 101 } })), /resp\.status: expected a final HTTP status \(200-599\), got 101/);
    refused(() => parseTransportPostOutput(encode({ resp: { headers: { 'x-a': '\u2028' } } })), /resp\.headers\["x-a"\]: the value contains U\+2028/);
    refused(() => parseTransportPostOutput(encode({ resp: { headers: { 'x-a': 7 } } })), /resp\.headers\["x-a"\]: expected a string or nil, got int/);
  });

  it('hook errors and LLM errors, in every hook that returns them (streaming ones too)', () => {
    refused(() => parseTransportPreOutput(encode({ error: { message: 'no', status: 101 } })), /^http_transport_pre_hook output at error\.status: .* got 101/);
    refused(() => parseTransportPostOutput(encode({ error: { message: 'no', status: 600 } })), /error\.status: .* got 600/);
    refused(() => parseChunkOutput(encode({ error: { message: 'no', status: 100 } })), /^http_transport_stream_chunk_hook output at error\.status: .* got 100/);
    refused(() => parseInterceptorOutput(encode({ error: { message: 'no', status: 102 } })), /^transport_interceptor output at error\.status: .* got 102/);
    refused(() => OUTPUT_PARSERS.pre_llm_hook(encode({ error: { message: 'no', status: 100 } })), /^pre_llm_hook output at error\.status: .* got 100/);
    refused(() => OUTPUT_PARSERS.post_hook(encode({ error: { message: 'no', status: 199 } })), /^post_hook output at error\.status: .* got 199/);
    assert.equal(parseLlmPostOutput(encode({ error: { message: 'busy', status: 429 } })).error?.status, 429);
  });

  it('the legacy interceptor: names and values checked, framing headers allowed through (the pipeline keeps the request\'s own)', () => {
    refused(() => parseInterceptorOutput(encode({ headers: { 'x-a': 'a\rb' } })), /^transport_interceptor output at headers\["x-a"\]: the value contains CR/);
    const out = parseInterceptorOutput(encode({ headers: { 'content-length': '93', 'x-a': 'b' } }));
    assert.deepEqual(out.headers, { 'content-length': '93', 'x-a': 'b' });
  });
});
