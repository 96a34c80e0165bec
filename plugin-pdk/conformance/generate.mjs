// Source of truth for conformance/vectors.json: `node plugin-pdk/conformance/generate.mjs`.
//
// Each vector is { name, hex, value, canonical? }: `hex` is the exact
// MessagePack, `value` the decoded value as JSON, with bin written as
// {"$bin": "<hex>"}. Every PDK's tests and the host codec tests decode `hex`
// and re-encode it. Without `canonical`, `hex` is the preferred (smallest)
// encoding and the bytes must come back identical. With `canonical` (the name
// of another vector), `hex` is a legal wider encoding of the same value: it
// must decode to `value`, and a typed re-encoder writes the canonical
// vector's bytes (ABI.md §6 says what "byte-identical" means).
//
// Encoder settings, and why:
// - useRecords:false           plain MessagePack, no msgpackr record extension.
// - variableMapSize:true       fixmap for small objects. Without it msgpackr
//                              writes every object as map16 (de 00 NN), which
//                              is valid but not the smallest, and not ABI.md §6.
// - encodeUndefinedAsNil:true  undefined never leaks as an ext type.
// JS numbers that are integers outside 32 bits would be written as float64 by
// msgpackr; such integers are written here as BigInt, which msgpackr encodes
// as int64 (d3). The JSON `value` shows them as plain (exact) numbers.

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, variableMapSize: true, encodeUndefinedAsNil: true });
const bin = (x) => (typeof x === 'string' ? Buffer.from(x, 'utf8') : Buffer.from(x));

const vectors = [
  {
    // ABI.md §6, byte for byte.
    name: 'transport-pre-input',
    value: {
      ctx: { 'sandgate.request_id': 'r1' },
      req: { method: 'POST', path: '/v1/chat', query: {}, headers: { 'x-a': '1' } },
    },
  },
  {
    // ABI.md §6 output: set a header and a context value, continue.
    name: 'transport-pre-output',
    value: { ctx: { greeting: 'hi' }, req: { headers: { 'x-custom-header': 'custom-value' } } },
  },
  {
    name: 'transport-post-input-body-utf8',
    value: {
      ctx: { 'sandgate.request_id': 'r-2', 'user.name': 'Zoë 😀', 'note': 'naïve café ☕ 日本語' },
      req: {
        method: 'POST',
        path: '/v1/chat/completions',
        query: { lang: 'français' },
        headers: { 'content-type': 'application/json', 'x-tag': 'café ☕' },
        body: bin('{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"Grüße 👋"}]}'),
      },
      resp: {
        status: 200,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: bin('{"reply":"héllo wörld ✓ 日本語 😀"}'),
      },
    },
  },
  {
    name: 'transport-pre-output-short-circuit',
    value: {
      ctx: { 'auth.denied': true },
      response: { status: 403, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: bin('forbidden ⛔') },
    },
  },
  {
    name: 'transport-post-output-error',
    value: { error: { message: 'upstream said no', status: 502, code: 'bad_gateway' } },
  },
  {
    name: 'llm-pre-input',
    value: {
      ctx: { 'sandgate.request_id': 'r3', 'sandgate.fallback_index': 0, 'sandgate.provider': 'openai', 'sandgate.model': 'gpt-4o-mini' },
      req: {
        provider: 'openai',
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hello!', name: 'alice' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q":"x"}' } }] },
        ],
        stream: false,
        params: {
          temperature: 0.7,
          top_p: 0.95,
          max_tokens: 256,
          logprobs: true,
          stop: ['\n\n', 'END'],
          response_format: { type: 'json_schema', json_schema: { name: 'answer', strict: true, schema: { type: 'object', properties: {} } } },
        },
      },
    },
  },
  {
    name: 'llm-pre-output-patch',
    value: {
      ctx: { 'guard.checked': true },
      req: { model: 'gpt-4o', params: { temperature: 0.2, max_tokens: null } },
    },
  },
  {
    name: 'llm-pre-output-error-no-fallbacks',
    value: {
      ctx: { 'guard.verdict': 'deny' },
      error: { message: 'blocked by policy', type: 'policy_error', code: 'content_blocked', status: 403, allow_fallbacks: false },
    },
  },
  {
    name: 'llm-post-input-error-nil-fallbacks',
    value: {
      ctx: { 'sandgate.request_id': 'r4', 'sandgate.fallback_index': 1 },
      error: { message: 'upstream timeout', type: 'provider_error', code: 'timeout', status: 504, allow_fallbacks: null, provider: 'openai', model: 'gpt-4o' },
    },
  },
  {
    name: 'llm-post-input-response',
    value: {
      ctx: { 'sandgate.request_id': 'r5', 'sandgate.fallback_index': 0 },
      response: {
        id: 'chatcmpl-123',
        object: 'chat.completion',
        created: 1732240000,
        model: 'gpt-4o-mini-2024-07-18',
        choices: [{ index: 0, message: { role: 'assistant', content: 'Hi! How can I help? 🙂' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 9, completion_tokens: 7, total_tokens: 16 },
        system_fingerprint: 'fp_44709d6fcb',
      },
    },
  },
  {
    name: 'chunk-input',
    value: {
      ctx: { 'sandgate.request_id': 'r6', 'sandgate.stream_end': false },
      chunk: {
        id: 'chatcmpl-9',
        object: 'chat.completion.chunk',
        created: 1732240001,
        model: 'gpt-4o-mini',
        choices: [{ index: 0, delta: { content: 'Hel' }, finish_reason: null }],
      },
    },
  },
  {
    name: 'init-input',
    value: { abi: 1, name: 'hello-world', config: { greeting: 'hi', limits: { rpm: 60, burst: 1.5 }, enabled: true, tags: ['a', 'b'] } },
  },
  { name: 'init-output', value: { request_body: false, response_body: false, stream_deltas: false } },
  {
    name: 'ints',
    value: {
      zero: 0, fixint_max: 127, uint8: 128, uint8_max: 255, uint16: 256, uint16_max: 65535,
      uint32: 65536, uint32_max: 4294967295, int64_pos: 5000000000n, int64_max_safe: 9007199254740991n,
      neg_fixint: -1, neg_fixint_min: -32, int8: -33, int8_min: -128, int16: -129, int16_min: -32768,
      int32: -32769, int32_min: -2147483648, int64_neg: -5000000000n,
    },
  },
  { name: 'floats', value: [0.5, -2.25, 0.1, 3.141592653589793, 1e300, -1.5e-300] },
  { name: 'scalars', value: [null, true, false, '', 'é'] },
  { name: 'empty-map', value: {} },
  { name: 'empty-containers', value: { map: {}, array: [], str: '', bin: bin([]) } },
  {
    name: 'sizes',
    value: {
      str8: 'x'.repeat(32),
      str8_utf8: 'é'.repeat(20), // 20 chars, 40 bytes: the header follows the byte length
      str16: 'y'.repeat(300),
      bin8: bin(new Array(200).fill(7)),
      bin16: bin(new Array(300).fill(255)),
      array16: Array.from({ length: 16 }, (_, i) => i),
      map16: Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])),
    },
  },
];

// The same envelope with every integer of its `response` written in one wider
// encoding, as other languages' encoders do (ABI.md §6): uint64 `cf` (Go's and
// Rust's encoders for unsigned fields), int64 `d3`, float64 `cb` (JavaScript).
// A decoder must read each to the same value; an encoder that knows the field
// is an integer writes the `canonical` vector's bytes.
function packWide(v, form) {
  if (typeof v === 'number' && Number.isInteger(v)) {
    const b = Buffer.alloc(9);
    if (form === 'cf') (b[0] = 0xcf), b.writeBigUInt64BE(BigInt(v), 1);
    else if (form === 'd3') (b[0] = 0xd3), b.writeBigInt64BE(BigInt(v), 1);
    else (b[0] = 0xcb), b.writeDoubleBE(v, 1);
    return b;
  }
  if (Array.isArray(v)) {
    if (v.length > 15) throw new Error('packWide: arrays up to 15 elements');
    return Buffer.concat([Buffer.from([0x90 | v.length]), ...v.map((x) => packWide(x, form))]);
  }
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const entries = Object.entries(v);
    if (entries.length > 15) throw new Error('packWide: maps up to 15 entries');
    return Buffer.concat([Buffer.from([0x80 | entries.length]), ...entries.flatMap(([k, x]) => [packr.pack(k), packWide(x, form)])]);
  }
  return packr.pack(v);
}

const postInput = vectors.find((v) => v.name === 'llm-post-input-response').value;
const wide = (form, label) => ({
  name: `llm-post-input-response-${label}`,
  canonical: 'llm-post-input-response',
  hex: Buffer.concat([Buffer.from([0x82]), packr.pack('ctx'), packr.pack(postInput.ctx), packr.pack('response'), packWide(postInput.response, form)]).toString('hex'),
  value: postInput,
});
const wideVectors = [wide('cf', 'uint64'), wide('d3', 'int64'), wide('cb', 'float64')];

// JSON form of a decoded value: bin as {"$bin": hex}, BigInt as a number.
function toJson(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new Error(`BigInt ${v} is not exact in JSON`);
    }
    return Number(v);
  }
  if (v instanceof Uint8Array) return { $bin: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return v.map(toJson);
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  return v;
}

const out = [
  ...vectors.map(({ name, value }) => ({ name, hex: Buffer.from(packr.pack(value)).toString('hex'), value: toJson(value) })),
  ...wideVectors.map(({ name, canonical, hex, value }) => ({ name, canonical, hex, value: toJson(value) })),
];

// ABI.md §6 quotes this vector; fail loudly if they ever disagree.
const ABI_SECTION_6 =
  '82a3637478' + '81b373616e64676174652e726571756573745f6964a27231' + 'a3726571' + '84' +
  'a66d6574686f64a4504f5354' + 'a470617468a82f76312f63686174' + 'a5717565727980' + 'a7686561646572738' + '1a3782d61a131';
if (out[0].hex !== ABI_SECTION_6) throw new Error(`transport-pre-input ${out[0].hex} != ABI.md §6 ${ABI_SECTION_6}`);

const file = fileURLToPath(new URL('./vectors.json', import.meta.url));
writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
console.log(`wrote ${out.length} vectors to ${file}`);
