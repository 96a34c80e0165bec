import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode, offsetOf } from '../host/abi/codec.js';
import { parseChunkOutput, parseLlmPostOutput, parseLlmPreOutput, parseTransportPreOutput } from '../host/abi/outputs.js';
import { sameValue } from '../host/abi/same-value.js';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';

// The output validator (host/abi/outputs.ts) on real MessagePack: where a bad
// output is reported (hook, key path, byte offset), outputs whose fields
// contradict each other, responses no client can use, integers in any
// encoding; and the ABI's value equality (host/abi/same-value.ts).

function refused(parse: () => unknown, says: RegExp): string {
  let message = '';
  assert.throws(parse, (e: unknown) => {
    assert.ok(e instanceof GatewayError, String(e));
    assert.equal(e.code, ErrorCode.pluginBadOutput);
    assert.match(e.message, says);
    message = e.message;
    return true;
  });
  return message;
}

/** Where `needle` (a value's own encoding) first occurs in `bytes`: the offset an error must name. */
function byteOf(bytes: Uint8Array, needle: Uint8Array): number {
  const at = Buffer.from(bytes).indexOf(Buffer.from(needle));
  assert.ok(at >= 0, 'the needle is in the bytes');
  return at;
}

const completion = (choices: unknown[]) => ({ id: 'c1', object: 'chat.completion', created: 1, model: 'm', choices });

describe('a bad output names the hook, the key path and the byte offset', () => {
  it('a wrong type deep in a response', () => {
    const bytes = encode({ response: completion([{ index: 0, message: 'hi', finish_reason: 'stop' }]) });
    const at = byteOf(bytes, encode('hi'));
    refused(() => parseLlmPostOutput(bytes), new RegExp(`^post_llm_hook output at response\\.choices\\[0\\]\\.message: expected a map, got str at byte ${at}$`));
  });

  it('a wrong type under a quoted header name', () => {
    const bytes = encode({ req: { headers: { 'x-a': 'ok', 'x-b': 7 } } });
    const at = byteOf(bytes, Uint8Array.of(0x07));
    refused(() => parseTransportPreOutput(bytes), new RegExp(`^http_transport_pre_hook output at req\\.headers\\["x-b"\\]: expected a string or nil, got int at byte ${at}$`));
  });

  it('an output that is not a map at all is at byte 0', () => {
    refused(() => parseLlmPreOutput(encode([1, 2])), /^pre_llm_hook output at the output: expected a map, got array at byte 0$/);
  });

  it('offsetOf walks maps and arrays of every header size', () => {
    const value = { a: 'x'.repeat(300), b: Array.from({ length: 20 }, (_, i) => i), c: { d: [new Uint8Array(70_000), { e: 'here' }] } };
    const bytes = encode(value);
    assert.equal(offsetOf(bytes, ['c', 'd', 1, 'e']), byteOf(bytes, encode('here')));
    assert.equal(offsetOf(bytes, ['b', 19]), byteOf(bytes, Uint8Array.of(0x13)));
    assert.equal(offsetOf(bytes, ['nope']), undefined);
    assert.equal(offsetOf(bytes, ['b', 20]), undefined);
  });
});

describe('malformed MessagePack is reported with the byte where it goes wrong', () => {
  it('a map that announces more entries than follow', () => {
    // {"ctx": {}} with a header saying two entries: the data ends where the second key should start.
    const bytes = Uint8Array.of(0x82, 0xa3, 0x63, 0x74, 0x78, 0x80);
    refused(() => parseLlmPostOutput(bytes), /^post_llm_hook output is not valid MessagePack: the data ends at byte 6 inside a value \(a map or array announces more entries than follow/);
  });

  it('JSON instead of MessagePack', () => {
    const bytes = Buffer.from('{"ctx":{}}');
    refused(() => parseLlmPostOutput(bytes), /^post_llm_hook output is not valid MessagePack: one value ends at byte 1 but 9 more byte\(s\) follow \(it starts with "\{": JSON\? hooks answer MessagePack/);
  });
});

describe('fields that contradict each other', () => {
  const conflicts = [
    { chunk: { choices: [] }, drop: true },
    { drop: true, error: { message: 'no' } },
    { chunk: { choices: [] }, error: { message: 'no' } },
    { chunk: { choices: [] }, drop: true, error: { message: 'no' } },
  ];
  for (const out of conflicts) {
    it(`a chunk output with ${Object.keys(out).join(', ')} is refused`, () => {
      refused(() => parseChunkOutput(encode(out)), /^http_transport_stream_chunk_hook output at the output: ".+" and ".+" contradict each other: set one of "chunk", "drop", "error" at byte 0$/);
    });
  }

  it('drop: false is no drop, so it may come with a chunk', () => {
    assert.deepEqual(parseChunkOutput(encode({ chunk: { choices: [] }, drop: false })).chunk, { choices: [] });
  });

  it('a response and an error together are refused in the LLM hooks', () => {
    refused(() => parseLlmPostOutput(encode({ response: completion([]), error: { message: 'x' } })), /"response" and "error" contradict each other/);
  });
});

describe('a response no client can use', () => {
  it('a completion with no choices is refused, in pre_llm_hook and post_llm_hook', () => {
    const bytes = encode({ response: completion([]) });
    refused(() => parseLlmPostOutput(bytes), /^post_llm_hook output at response\.choices: expected at least one choice/);
    refused(() => parseLlmPreOutput(bytes), /^pre_llm_hook output at response\.choices: expected at least one choice/);
    refused(() => parseLlmPostOutput(encode({ response: { choices: [] } })), /expected at least one choice/);
  });

  it('a streamed chunk may have no choices (the usage-only chunk)', () => {
    const out = parseLlmPostOutput(encode({ response: { ...completion([]), object: 'chat.completion.chunk', usage: { total_tokens: 3 } } }));
    assert.deepEqual(out.response?.choices, []);
  });

  it('the envelope fields a plugin leaves out are filled (ABI.md §5.4)', () => {
    const before = Math.floor(Date.now() / 1000);
    const r = parseLlmPostOutput(encode({ response: { choices: [{ message: { role: 'assistant', content: 'x' } }] } })).response!;
    assert.equal(r.id, 'chatcmpl-plugin');
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, '');
    assert.ok(r.created >= before && r.created <= Math.floor(Date.now() / 1000) + 1);
  });

  it('created must be an integer when present', () => {
    refused(() => parseLlmPostOutput(encode({ response: { ...completion([{ message: { role: 'a', content: 'x' } }]), created: 'now' } })), /response\.created: expected an integer, got str/);
  });
});

/** MessagePack for { response: { created: <n in the given 9-byte encoding>, choices: [...] } }. */
function withCreated(type: 0xcf | 0xd3 | 0xcb, n: number): Uint8Array {
  const wide = Buffer.alloc(9);
  wide[0] = type;
  if (type === 0xcb) wide.writeDoubleBE(n, 1);
  else if (type === 0xcf) wide.writeBigUInt64BE(BigInt(n), 1);
  else wide.writeBigInt64BE(BigInt(n), 1);
  const choices = encode([{ message: { role: 'assistant', content: 'x' } }]);
  return Buffer.concat([encode({ response: 0 }).subarray(0, 10), Uint8Array.of(0x82), encode('created'), wide, encode('choices'), choices]);
}

describe('integers in any encoding', () => {
  for (const type of [0xcf, 0xd3, 0xcb] as const) {
    it(`created written as 0x${type.toString(16)} reads as the integer`, () => {
      assert.equal(parseLlmPostOutput(withCreated(type, 5_000_000_000)).response?.created, 5_000_000_000);
      assert.equal(parseLlmPostOutput(withCreated(type, 1_700_000_000)).response?.created, 1_700_000_000);
    });
  }

  it('a status written as uint64 cf or float64 cb is the same status', () => {
    // { "response": { "status": <403> } } with the status in a 9-byte encoding.
    const head = Buffer.concat([Uint8Array.of(0x81), encode('response'), Uint8Array.of(0x81), encode('status')]);
    const cf = Buffer.concat([head, Uint8Array.of(0xcf, 0, 0, 0, 0, 0, 0, 0x01, 0x93)]);
    const cb = Buffer.alloc(9);
    cb[0] = 0xcb;
    cb.writeDoubleBE(403, 1);
    assert.equal(parseTransportPreOutput(cf).response?.status, 403);
    assert.equal(parseTransportPreOutput(Buffer.concat([head, cb])).response?.status, 403);
  });
});

describe('sameValue: equal by value, as the ABI defines it', () => {
  it('ignores key order, integer encoding and nil against absent', () => {
    const sent = { id: 'a', created: 1_700_000_000, choices: [{ index: 0, delta: { content: 'x' }, finish_reason: null }], big: 5_000_000_000 };
    const back = { big: 5_000_000_000.0, choices: [{ delta: { content: 'x', role: null }, index: 0 }], created: 1_700_000_000, id: 'a' };
    assert.equal(sameValue(sent, back), true);
  });

  it('sees every real change', () => {
    const base = { a: [1, 'x', { b: true }], c: new Uint8Array([1, 2]) };
    assert.equal(sameValue(base, { a: [1, 'x', { b: true }], c: new Uint8Array([1, 2]) }), true);
    for (const changed of [
      { a: [1, 'x', { b: false }], c: new Uint8Array([1, 2]) },
      { a: [1, 'x'], c: new Uint8Array([1, 2]) },
      { a: [1, 'x', { b: true }], c: new Uint8Array([1, 3]) },
      { a: [1, 'x', { b: true }], c: new Uint8Array([1, 2]), d: 0 },
      { a: [1, 'x', { b: true }] },
      { a: ['1', 'x', { b: true }], c: new Uint8Array([1, 2]) },
      { a: [1, 'x', { b: true }], c: [1, 2] },
    ]) {
      assert.equal(sameValue(base, changed), false, JSON.stringify(changed));
      assert.equal(sameValue(changed, base), false, JSON.stringify(changed));
    }
  });
});
