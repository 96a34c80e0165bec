import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encode } from '../host/abi/codec.js';
import { HOST_OWNED_HEADERS } from '../host/abi/http-fields.js';
import {
  parseChunkOutput,
  parseInitOutput,
  parseInterceptorOutput,
  parseLlmPostOutput,
  parseLlmPreOutput,
  parseNameOutput,
  parseTransportPostOutput,
  parseTransportPreOutput,
} from '../host/abi/outputs.js';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';

// host/abi/outputs.ts validates what untrusted guests return. Properties:
// a valid output of every hook is accepted and read back exactly as it was
// sent; an output with one field made invalid is plugin_bad_output, every
// time; and any bytes at all, random or a valid output mutated, end either in
// a parsed output or in plugin_bad_output, never another error. Inputs are
// bounded in size (so each is bounded in time and memory) rather than timed.

type Json = null | boolean | number | string | Uint8Array | Json[] | { [k: string]: Json };
type Parser = (bytes: Uint8Array | null, maxDepth?: number) => unknown;

const RUNS = { numRuns: 300 };

// ---- generators of valid fields

const key = fc.stringMatching(/^[a-z][a-z0-9_.]{0,11}$/);
const scalar: fc.Arbitrary<Json> = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null));
const value: fc.Arbitrary<Json> = fc.letrec<{ v: Json }>((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(key, tie('v'), { maxKeys: 3 })),
})).v;
const ctxPatch = fc.dictionary(key, fc.oneof(scalar, value), { maxKeys: 4 });
const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/).filter((h) => !HOST_OWNED_HEADERS.has(h));
const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,24}$/).map((v) => v.trim());
const headerMap = fc.dictionary(headerName, headerValue, { maxKeys: 4 });
const headerPatch = fc.dictionary(headerName, fc.option(headerValue, { nil: null }), { maxKeys: 4 });
const strPatch = fc.dictionary(key, fc.option(fc.string({ maxLength: 12 }), { nil: null }), { maxKeys: 4 });
const status = fc.integer({ min: 200, max: 599 });
const bin = fc.uint8Array({ maxLength: 32 });
const method = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE');
const hookError = fc.record({ message: fc.string({ maxLength: 30 }), status: status, code: fc.stringMatching(/^[a-z_]{1,16}$/) }, { requiredKeys: ['message'] });
const message = fc.record({ role: fc.constantFrom('system', 'user', 'assistant'), content: fc.option(fc.string({ maxLength: 40 }), { nil: null }) });
const llmResponse = fc.record({
  id: fc.string({ maxLength: 12 }),
  object: fc.constant('chat.completion'),
  created: fc.integer({ min: 0, max: 2 ** 31 }),
  model: fc.string({ maxLength: 12 }),
  choices: fc.array(fc.record({ index: fc.nat(5), message, finish_reason: fc.option(fc.constantFrom('stop', 'length'), { nil: null }) }), { minLength: 1, maxLength: 2 }),
});
const llmError = fc.record(
  { message: fc.string({ maxLength: 30 }), type: fc.string({ maxLength: 10 }), code: fc.string({ maxLength: 10 }), status, allow_fallbacks: fc.boolean(), provider: fc.string({ maxLength: 8 }), model: fc.string({ maxLength: 8 }) },
  { requiredKeys: ['message'] },
);
/** At most one of two short-circuits (setting both is a bad output). */
const oneOf = <A, B>(a: fc.Arbitrary<A>, an: string, b: fc.Arbitrary<B>, bn: string) =>
  fc.oneof(fc.constant({}), a.map((x) => ({ [an]: x })), b.map((x) => ({ [bn]: x })));

// ---- each hook: a valid output, and what the parser must read back

interface HookCase {
  hook: string;
  parse: Parser;
  valid: fc.Arbitrary<Record<string, Json>>;
  /** The parsed form of `v`: the same values, with the defaults the ABI states. */
  expected(v: any): unknown;
  /** Ways to make one field of a valid output invalid. */
  corruptions: ((v: any) => void)[];
}

const HOOKS: HookCase[] = [
  {
    hook: 'http_transport_pre_hook',
    parse: parseTransportPreOutput,
    valid: fc
      .tuple(
        fc.record({ ctx: ctxPatch, req: fc.record({ method, path: fc.string({ maxLength: 20 }), headers: headerPatch, query: strPatch, body: bin }, { requiredKeys: [] }) }, { requiredKeys: [] }),
        oneOf(fc.record({ status, headers: headerMap, body: bin }), 'response', hookError, 'error'),
      )
      .map(([a, b]) => ({ ...a, ...b }) as Record<string, Json>),
    expected: (v) => ({
      ctx: v.ctx,
      req: v.req && { method: v.req.method, path: v.req.path, headers: v.req.headers, query: v.req.query, body: v.req.body },
      response: v.response && { status: v.response.status, headers: v.response.headers, body: v.response.body },
      error: v.error && { message: v.error.message, status: v.error.status, code: v.error.code },
    }),
    corruptions: [
      (v) => (v.req = { ...v.req, method: 'NOT A METHOD' }),
      (v) => (v.req = { ...v.req, headers: { 'bad name': 'x' } }),
      (v) => (v.req = { ...v.req, headers: { 'x-ok': 'split\r\nvalue' } }),
      (v) => (v.req = { ...v.req, headers: { 'content-length': '1' } }),
      (v) => (v.req = { ...v.req, query: { q: 1 } }),
      (v) => (v.req = { ...v.req, body: 'text, not bin' }),
      (v) => (v.ctx = [1, 2]),
      (v) => ((v.response = { status: 101 }), delete v.error),
      (v) => ((v.error = { status: 500 }), delete v.response),
      (v) => ((v.response = {}), (v.error = { message: 'both' })),
    ],
  },
  {
    hook: 'http_transport_post_hook',
    parse: parseTransportPostOutput,
    valid: fc.record({ ctx: ctxPatch, resp: fc.record({ status, headers: headerPatch, body: bin }, { requiredKeys: [] }), error: hookError }, { requiredKeys: [] }),
    expected: (v) => ({
      ctx: v.ctx,
      resp: v.resp && { status: v.resp.status, headers: v.resp.headers, body: v.resp.body },
      error: v.error && { message: v.error.message, status: v.error.status, code: v.error.code },
    }),
    corruptions: [
      (v) => (v.resp = { ...v.resp, status: 1000 }),
      (v) => (v.resp = { ...v.resp, status: '200' }),
      (v) => (v.resp = { ...v.resp, headers: { 'transfer-encoding': 'chunked' } }),
      (v) => (v.resp = { ...v.resp, headers: { 'x-latin': '\u20ac' } }),
      (v) => (v.error = { message: 7 }),
    ],
  },
  {
    hook: 'pre_llm_hook',
    parse: parseLlmPreOutput,
    valid: fc
      .tuple(
        fc.record(
          { ctx: ctxPatch, req: fc.record({ provider: fc.string({ maxLength: 8 }), model: fc.string({ maxLength: 8 }), messages: fc.array(message, { maxLength: 3 }), params: ctxPatch, headers: headerPatch }, { requiredKeys: [] }) },
          { requiredKeys: [] },
        ),
        oneOf(llmResponse, 'response', llmError, 'error'),
      )
      .map(([a, b]) => ({ ...a, ...b }) as Record<string, Json>),
    expected: (v) => ({
      ctx: v.ctx,
      req: v.req && { provider: v.req.provider, model: v.req.model, messages: v.req.messages, params: v.req.params, headers: v.req.headers },
      response: v.response,
      error: v.error && { ...v.error, allow_fallbacks: v.error.allow_fallbacks ?? null },
    }),
    corruptions: [
      (v) => (v.req = { ...v.req, messages: [{ content: 'no role' }] }),
      (v) => (v.req = { ...v.req, messages: { role: 'user' } }),
      (v) => (v.req = { ...v.req, model: 42 }),
      (v) => (v.req = { ...v.req, params: 'not a map' }),
      (v) => (v.req = { ...v.req, headers: { 'x-ok': 'a\nb' } }),
      (v) => ((v.response = { choices: 'none' }), delete v.error),
      (v) => ((v.error = { message: 'x', allow_fallbacks: 'no' }), delete v.response),
      (v) => ((v.response = { choices: [] }), (v.error = { message: 'both' })),
    ],
  },
  {
    hook: 'post_llm_hook',
    parse: parseLlmPostOutput,
    valid: fc.tuple(fc.record({ ctx: ctxPatch }, { requiredKeys: [] }), oneOf(llmResponse, 'response', llmError, 'error')).map(([a, b]) => ({ ...a, ...b }) as Record<string, Json>),
    expected: (v) => ({ ctx: v.ctx, response: v.response, error: v.error && { ...v.error, allow_fallbacks: v.error.allow_fallbacks ?? null } }),
    corruptions: [
      (v) => ((v.response = { choices: [{ message: { role: 3 } }] }), delete v.error),
      (v) => ((v.error = { message: null, code: 'x' }), delete v.response),
      (v) => (v.ctx = 'ctx'),
    ],
  },
  {
    hook: 'http_transport_stream_chunk_hook',
    parse: parseChunkOutput,
    // At most one of chunk, drop: true and error: together they contradict each other (ABI.md §5.5).
    valid: fc
      .record({ ctx: ctxPatch, chunk: fc.dictionary(key, value, { maxKeys: 4 }), drop: fc.boolean(), error: hookError }, { requiredKeys: [] })
      .filter((v) => [v.chunk !== undefined, v.drop === true, v.error !== undefined].filter(Boolean).length <= 1),
    expected: (v) => ({ ctx: v.ctx, chunk: v.chunk, drop: v.drop, error: v.error && { message: v.error.message, status: v.error.status, code: v.error.code } }),
    corruptions: [(v) => (v.chunk = [1]), (v) => (v.drop = 1), (v) => (v.error = { status: 400 }), (v) => ((v.chunk = {}), (v.drop = true))],
  },
  {
    hook: 'init',
    parse: (b) => parseInitOutput(b),
    valid: fc.record({ error: fc.string({ maxLength: 20 }), request_body: fc.boolean(), response_body: fc.boolean() }, { requiredKeys: [] }),
    expected: (v) => ({ error: v.error, request_body: v.request_body, response_body: v.response_body }),
    corruptions: [(v) => (v.request_body = 'yes'), (v) => (v.error = 1)],
  },
  {
    hook: 'transport_interceptor',
    parse: parseInterceptorOutput,
    valid: fc.record({ ctx: ctxPatch, headers: headerMap, body: fc.dictionary(key, value, { maxKeys: 3 }), error: hookError }, { requiredKeys: [] }),
    expected: (v) => ({ ctx: v.ctx, headers: v.headers, body: v.body, error: v.error && { message: v.error.message, status: v.error.status, code: v.error.code } }),
    corruptions: [(v) => (v.headers = { 'bad name': 'x' }), (v) => (v.body = [1]), (v) => (v.headers = { a: null })],
  },
];

/** Comparable form: binary as hex, absent fields dropped (as MessagePack carries them). */
function canonical(v: unknown): unknown {
  if (v instanceof Uint8Array) return { $bin: Buffer.from(v).toString('hex') }; // Buffer too (before its toJSON)
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, canonical(x)]));
  }
  return v;
}

function isBadOutput(e: unknown): boolean {
  return e instanceof GatewayError && e.code === ErrorCode.pluginBadOutput;
}

describe('valid outputs are read back exactly', () => {
  for (const h of HOOKS) {
    it(h.hook, () => {
      fc.assert(
        fc.property(h.valid, (v) => {
          assert.deepEqual(canonical(h.parse(encode(v))), canonical(h.expected(v)));
        }),
        RUNS,
      );
    });
  }

  it('get_name: any string', () => {
    fc.assert(fc.property(fc.string({ maxLength: 40 }), (name) => assert.equal(parseNameOutput(encode(name)), name)), RUNS);
  });
});

describe('an output with one invalid field is plugin_bad_output', () => {
  for (const h of HOOKS) {
    it(h.hook, () => {
      fc.assert(
        fc.property(h.valid, fc.nat(h.corruptions.length - 1), (v, which) => {
          const bad = structuredClone(v) as Record<string, unknown>;
          h.corruptions[which](bad);
          assert.throws(() => h.parse(encode(bad)), isBadOutput, `corruption ${which} of ${JSON.stringify(canonical(bad))}`);
        }),
        RUNS,
      );
    });
  }
});

describe('any bytes: a parsed output or plugin_bad_output, nothing else', () => {
  const parsers: [string, Parser][] = [...HOOKS.map((h): [string, Parser] => [h.hook, h.parse]), ['get_name', (b) => parseNameOutput(b)]];
  const outcome = (parse: Parser, bytes: Uint8Array) => {
    try {
      parse(bytes, 64);
    } catch (e) {
      assert.ok(isBadOutput(e), `not plugin_bad_output: ${(e as Error)?.stack ?? String(e)}\nbytes: ${Buffer.from(bytes).toString('hex')}`);
    }
  };

  it('random bytes (up to 2 KiB)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), fc.constantFrom(...parsers), (bytes, [, parse]) => outcome(parse, bytes)), { numRuns: 2000 });
  });

  it('valid outputs with bytes flipped, cut, inserted or removed', () => {
    const mutated = fc.constantFrom(...HOOKS).chain((h) =>
      fc.tuple(
        fc.constant(h.parse),
        h.valid.map((v) => Buffer.from(encode(v))),
        fc.array(fc.tuple(fc.constantFrom('flip', 'cut', 'insert', 'remove'), fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      ),
    );
    fc.assert(
      fc.property(mutated, ([parse, original, edits]) => {
        let bytes = Buffer.from(original);
        for (const [op, at, b] of edits) {
          const i = bytes.length === 0 ? 0 : at % bytes.length;
          if (op === 'flip' && bytes.length > 0) bytes[i] ^= b || 1;
          else if (op === 'cut') bytes = bytes.subarray(0, i);
          else if (op === 'insert') bytes = Buffer.concat([bytes.subarray(0, i), Buffer.from([b]), bytes.subarray(i)]);
          else if (op === 'remove') bytes = Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + 1)]);
        }
        outcome(parse, bytes);
      }),
      { numRuns: 3000 },
    );
  });

  it('headers that claim huge lengths in a few bytes (array, map, str, bin of 2^32-1)', () => {
    for (const head of ['dd', 'df', 'db', 'c6']) {
      for (const [, parse] of parsers) outcome(parse, Buffer.from(`${head}ffffffff00`, 'hex'));
    }
  });
});
