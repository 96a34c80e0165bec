// PDK conformance: every vector in plugin-pdk/conformance/vectors.json goes
// through build/conformance.wasm (built by scripts/build-plugins.mjs) and must
// come back byte for byte.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadPlugin, pack, toJson, unpack } from '../harness.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const vectors = JSON.parse(readFileSync(here('../../conformance/vectors.json'), 'utf8'));
const vec = (name) => {
  const v = vectors.find((x) => x.name === name);
  assert.ok(v, `vector ${name} missing`);
  return v;
};
const bytes = (name) => Buffer.from(vec(name).hex, 'hex');
const hexOf = (out) => (out === null ? null : Buffer.from(out).toString('hex'));

let p;
before(async () => {
  p = await loadPlugin(here('../build/conformance.wasm'));
});
after(() => p?.close());

describe('vectors.json', () => {
  test('value matches the decoded hex', () => {
    for (const v of vectors) assert.deepEqual(toJson(unpack(Buffer.from(v.hex, 'hex'))), v.value, v.name);
  });
});

describe('dynamic Value round trip (roundtrip export)', () => {
  for (const v of vectors) {
    test(v.name, async () => {
      const { output } = await p.call('roundtrip', Buffer.from(v.hex, 'hex'));
      // A vector with a canonical one is a wider encoding: an untyped Value keeps a float64 a
      // float64, so what must come back is the same value, not the same bytes (ABI.md §6).
      if (v.canonical) assert.deepEqual(toJson(unpack(output)), v.value);
      else assert.equal(hexOf(output), v.hex);
    });
  }
});

describe('integers in any encoding (uint64 cf, int64 d3, float64 cb)', () => {
  for (const v of vectors.filter((x) => x.canonical)) {
    test(`${v.name} via rt_llm_post is written as ${v.canonical}`, async () => {
      const { output } = await p.call('rt_llm_post', Buffer.from(v.hex, 'hex'));
      assert.equal(hexOf(output), vec(v.canonical).hex);
    });
  }
});

describe('typed envelopes round trip', () => {
  const cases = [
    ['transport-pre-input', 'rt_transport_pre'],
    ['transport-post-input-body-utf8', 'rt_transport_post'],
    ['llm-pre-input', 'rt_llm_pre'],
    ['llm-post-input-response', 'rt_llm_post'],
    ['llm-post-input-error-nil-fallbacks', 'rt_llm_post'],
    ['llm-pre-output-error-no-fallbacks', 'rt_llm_error'],
  ];
  for (const [name, fn] of cases) {
    test(`${name} via ${fn}`, async () => {
      const { output } = await p.call(fn, bytes(name));
      assert.equal(hexOf(output), vec(name).hex);
    });
  }
});

describe('hook runners produce the output vectors', () => {
  const cases = [
    // [export, input vector, expected output vector]
    ['emit_transport_pre_output', 'transport-pre-input', 'transport-pre-output'],
    ['emit_transport_pre_short_circuit', 'transport-pre-input', 'transport-pre-output-short-circuit'],
    ['emit_transport_post_error', 'transport-post-input-body-utf8', 'transport-post-output-error'],
    ['emit_init_output', 'init-input', 'init-output'],
    ['emit_llm_pre_patch', 'llm-pre-input', 'llm-pre-output-patch'],
    ['emit_llm_pre_error', 'llm-pre-input', 'llm-pre-output-error-no-fallbacks'],
  ];
  for (const [fn, input, expected] of cases) {
    test(`${fn}: ${input} -> ${expected}`, async () => {
      const { output } = await p.call(fn, bytes(input));
      assert.equal(hexOf(output), vec(expected).hex);
    });
  }

  for (const input of ['llm-post-input-response', 'llm-post-input-error-nil-fallbacks']) {
    test(`an untouched post_llm_hook result sends nothing back (${input})`, async () => {
      const { output } = await p.call('emit_llm_post_noop', bytes(input));
      assert.equal(output, null);
    });
  }
});

describe('streamed deltas', () => {
  test('a delta without role is written back without one (an empty role would be a change)', async () => {
    const chunk = (delta) => ({
      ctx: {},
      response: { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: null }] },
    });
    const { output } = await p.call('rt_llm_post', pack(chunk({ content: 'x' })));
    assert.deepEqual(unpack(output).response.choices[0].delta, { content: 'x' });
    const first = await p.call('rt_llm_post', pack(chunk({ role: 'assistant', content: 'x' })));
    assert.deepEqual(unpack(first.output).response.choices[0].delta, { role: 'assistant', content: 'x' });
  });
});

describe('malformed input', () => {
  test('truncated msgpack traps and logs the reason at level 3', async () => {
    const q = await loadPlugin(here('../build/conformance.wasm'));
    const e = await q.call('roundtrip', bytes('llm-pre-input').subarray(0, 40)).then(() => assert.fail('should trap'), (err) => err);
    assert.match(e.message, /unreachable/);
    assert.equal(e.logs.length, 1);
    assert.equal(e.logs[0][0], 3);
    assert.match(e.logs[0][1], /msgpack: truncated input at .*reader\.ts:\d+:\d+/);
    await q.close();
  });
});
