// The hello-world sample plugin, called hook by hook like the gateway would.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadPlugin, pack, unpack } from '../harness.mjs';

const WASM = fileURLToPath(new URL('../../../sample-plugins/hello-world/build/hello-world.wasm', import.meta.url));

// A realistic transport envelope (~300 bytes): headers only, as init opted out of bodies.
const ctx0 = { 'sandgate.request_id': '6f1c2a9e-3b7d-4e21-9a55-0c8d1e2f3a4b' };
const req0 = {
  method: 'POST',
  path: '/v1/chat/completions',
  query: {},
  headers: {
    'content-type': 'application/json',
    'accept': 'application/json',
    'authorization': 'Bearer sk-test-0123456789abcdef0123456789abcdef',
    'user-agent': 'openai-node/4.77.0',
    'x-stainless-lang': 'js',
    'host': 'localhost:8080',
    'content-length': '93',
  },
};
const preInput = pack({ ctx: ctx0, req: req0 });

const messages = (logs) => logs.map(([, m]) => m);

let p;
before(async () => {
  p = await loadPlugin(WASM);
});
after(() => p?.close());

describe('hello-world', () => {
  test('is a Sandgate ABI v1 module that imports only the fast path', async () => {
    const mod = new WebAssembly.Module(await import('node:fs').then((fs) => fs.readFileSync(WASM)));
    const exports = WebAssembly.Module.exports(mod).map((e) => e.name).sort();
    assert.deepEqual(exports, [
      'cleanup', 'get_name', 'http_transport_post_hook', 'http_transport_pre_hook', 'init', 'memory',
      'post_llm_hook', 'pre_llm_hook', 'sandgate_abi_v1',
    ]);
    // Loaded through the gateway's own load path: the marker was checked and every hook is seen.
    assert.deepEqual([...p.hooks].sort(), ['cleanup', 'get_name', 'http_transport_post_hook', 'http_transport_pre_hook', 'init', 'post_llm_hook', 'pre_llm_hook']);
    const imports = WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}`).sort();
    assert.deepEqual(imports, ['sandgate:host/v1.input_length', 'sandgate:host/v1.input_read', 'sandgate:host/v1.log', 'sandgate:host/v1.output_write']);
  });

  test('init opts out of bodies and of streamed deltas', async () => {
    const { output, logs } = await p.call('init', pack({ abi: 1, name: 'hello-world', config: { anything: [1, 2] } }));
    assert.deepEqual(unpack(output), { request_body: false, response_body: false, stream_deltas: false });
    assert.deepEqual(logs, [[1, 'Init called']]);
  });

  test('get_name', async () => {
    const { output } = await p.call('get_name');
    assert.equal(unpack(output), 'hello-world');
  });

  test('http_transport_pre_hook sets a header and a context value, and reads Content-Type', async () => {
    const { output, logs } = await p.call('http_transport_pre_hook', preInput);
    assert.deepEqual(unpack(output), {
      ctx: { 'hello-world.greeting': 'pre-hook-value' },
      req: { headers: { 'x-custom-header': 'custom-value' } },
    });
    assert.deepEqual(logs, [[1, 'HTTPTransportPreHook called'], [0, 'Content-Type: application/json']]);
  });

  test('Content-Type lookup is case-insensitive', async () => {
    const { logs } = await p.call('http_transport_pre_hook', pack({ ctx: {}, req: { ...req0, headers: { 'Content-Type': 'text/plain' } } }));
    assert.deepEqual(messages(logs), ['HTTPTransportPreHook called', 'Content-Type: text/plain']);
  });

  test('the context value crosses hooks: pre sets it, post echoes it as x-hello-context', async () => {
    const pre = unpack((await p.call('http_transport_pre_hook', preInput)).output);
    // What the host does between hooks: merge the ctx patch into the context.
    const ctx = { ...ctx0, ...pre.ctx };
    const resp = { status: 200, headers: { 'content-type': 'application/json' } };
    const { output, logs } = await p.call('http_transport_post_hook', pack({ ctx, req: req0, resp }));
    assert.deepEqual(unpack(output), {
      resp: { headers: { 'x-processed-by': 'hello-world', 'x-hello-context': 'pre-hook-value' } },
    });
    assert.deepEqual(messages(logs), ['HTTPTransportPostHook called', 'Context value: pre-hook-value']);
  });

  test('http_transport_post_hook without the context value only adds x-processed-by', async () => {
    const { output } = await p.call('http_transport_post_hook', pack({ ctx: ctx0, req: req0, resp: { status: 201, headers: {} } }));
    assert.deepEqual(unpack(output), { resp: { headers: { 'x-processed-by': 'hello-world' } } });
  });

  test('pre_llm_hook and post_llm_hook log and continue (no output)', async () => {
    const req = { provider: 'openai', model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello! Grüße 👋' }], stream: false, params: { temperature: 0.5 } };
    const pre = await p.call('pre_llm_hook', pack({ ctx: ctx0, req }));
    assert.equal(pre.output, null);
    assert.deepEqual(pre.logs, [[1, 'PreLLMHook called']]);
    const response = {
      id: 'chatcmpl-1', object: 'chat.completion', created: 1732240000, model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hallo! 👋' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
    };
    const post = await p.call('post_llm_hook', pack({ ctx: ctx0, response }));
    assert.equal(post.output, null);
    assert.deepEqual(post.logs, [[1, 'PostLLMHook called']]);
    const postErr = await p.call('post_llm_hook', pack({ ctx: ctx0, error: { message: 'rate limited', status: 429, allow_fallbacks: null } }));
    assert.equal(postErr.output, null);
  });

  test('cleanup logs', async () => {
    const { logs } = await p.call('cleanup');
    assert.deepEqual(logs, [[1, 'Cleanup called']]);
  });

  test('memory stays flat over many calls (the PDK frees each call)', async () => {
    for (let i = 0; i < 2000; i++) await p.call('http_transport_pre_hook', preInput);
    const before = p.memory.buffer.byteLength;
    for (let i = 0; i < 20000; i++) await p.call('http_transport_pre_hook', preInput);
    assert.equal(p.memory.buffer.byteLength, before);
  });

  test('timing: 10,000 http_transport_pre_hook calls (printed, not asserted)', async () => {
    assert.ok(preInput.length >= 250 && preInput.length <= 350, `envelope is ${preInput.length} bytes`);
    const N = 10_000;
    for (let i = 0; i < 1000; i++) await p.call('http_transport_pre_hook', preInput); // warm up
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) await p.call('http_transport_pre_hook', preInput);
    const us = Number(process.hrtime.bigint() - t0) / 1000 / N;
    console.log(`# hello-world http_transport_pre_hook: ${us.toFixed(2)} us/call average over ${N} calls, ${preInput.length}-byte envelope`);
  });
});
