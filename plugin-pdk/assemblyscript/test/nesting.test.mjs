// The kit's decoder meets input nested deeper than its bound (MAX_DEPTH, 256
// levels of maps and arrays per value): it must fail with a clear message,
// never overflow the stack. Through build/features.wasm (test/features.ts).

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadPlugin, pack, unpack } from '../harness.mjs';

const WASM = fileURLToPath(new URL('../build/features.wasm', import.meta.url));
const MAX_DEPTH = 256;
const MARK = 'NESTED-HERE';

/**
 * Encodes `envelope` with `levels` nested one-element arrays around nil where
 * the string MARK is. Built as bytes (0x91 per level, then 0xc0): encoders,
 * msgpackr included, recurse and could not write 100,000 levels.
 */
function withNesting(envelope, levels) {
  const bytes = Buffer.from(pack(envelope));
  const at = bytes.indexOf(Buffer.from(MARK));
  assert.ok(at > 0 && bytes[at - 1] === 0xa0 + MARK.length, 'MARK is one fixstr in the envelope');
  return Buffer.concat([bytes.subarray(0, at - 1), Buffer.alloc(levels, 0x91), Buffer.from([0xc0]), bytes.subarray(at + MARK.length)]);
}

/** [[[…nil…]]], `levels` arrays deep, as the decoder should give it back. */
function nested(levels) {
  let v = null;
  for (let i = 0; i < levels; i++) v = [v];
  return v;
}

const chunk = (deep) => ({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: 'edit' } }], deep });
const llmReq = (content) => ({ ctx: {}, req: { provider: 'mock', model: 'echo', messages: [{ role: 'user', content }], params: {} } });

// A failed call leaves the instance unusable (as in the gateway, which discards it): one instance per test.
let p;
afterEach(() => p?.close());

async function callFails(hook, input) {
  p = await loadPlugin(WASM);
  const e = await p.call(hook, input).then(
    () => assert.fail(`${hook} should have failed`),
    (err) => err,
  );
  assert.ok(!(e instanceof RangeError), `a clean abort, not a stack overflow: ${e}`);
  assert.deepEqual(
    e.logs.map(([, msg]) => msg.replace(/ at .*$/, '')),
    [`plugin aborted: msgpack: a value nests deeper than ${MAX_DEPTH} levels of maps and arrays (MAX_DEPTH)`],
  );
}

describe('decoding nesting beyond MAX_DEPTH', () => {
  test('a chunk exactly MAX_DEPTH levels deep decodes and goes back whole', async () => {
    p = await loadPlugin(WASM);
    // The chunk map is one level: MAX_DEPTH - 1 arrays inside it make MAX_DEPTH.
    const { output } = await p.call('http_transport_stream_chunk_hook', withNesting({ ctx: {}, chunk: chunk(MARK) }, MAX_DEPTH - 1));
    const out = unpack(output);
    assert.equal(out.chunk.choices[0].delta.content, 'EDITED ✓');
    assert.deepEqual(out.chunk.deep, nested(MAX_DEPTH - 1));
  });

  test('one level more fails with a message naming the bound', async () => {
    await callFails('http_transport_stream_chunk_hook', withNesting({ ctx: {}, chunk: chunk(MARK) }, MAX_DEPTH));
  });

  test('100,000 levels in a chunk: the same clean failure, no stack overflow', async () => {
    await callFails('http_transport_stream_chunk_hook', withNesting({ ctx: {}, chunk: chunk(MARK) }, 100_000));
  });

  test('100,000 levels in a message content: the same clean failure', async () => {
    await callFails('pre_llm_hook', withNesting(llmReq(MARK), 100_000));
  });
});
