// hello-world-c (sample-plugins/hello-world-c, the C PDK) through the real
// gateway: the same observable behaviour as the AssemblyScript hello-world.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { samplePlugin } from './helpers/paths.js';

const CHAT_PATH = '/v1/chat/completions';
const WASM = samplePlugin('hello-world-c');

describe('sample hello-world-c (C PDK) through the gateway', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      providers: { mock: { type: 'mock' } },
      runtime: { workers: 2 },
      plugins: [{ name: 'hello-world-c', path: WASM, config: { greeting: 'hello' }, on_error: 'fail-closed' }],
    });
  });
  after(() => gw.close());

  it('is an ABI v1 module with the kit marker that imports only the fast path', () => {
    const mod = new WebAssembly.Module(readFileSync(WASM));
    assert.deepEqual(WebAssembly.Module.exports(mod).map((e) => e.name).sort(), [
      'cleanup', 'get_name', 'http_transport_post_hook', 'http_transport_pre_hook', 'init', 'memory',
      'post_llm_hook', 'pre_llm_hook', 'sandgate_abi_v1',
    ]);
    assert.deepEqual(WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}`).sort(), [
      'sandgate:host/v1.input_length', 'sandgate:host/v1.input_read', 'sandgate:host/v1.log', 'sandgate:host/v1.output_write',
    ]);
  });

  it('sets x-processed-by, and x-hello-context from the value its pre-hook put in the context', async () => {
    const r = await gw.post(CHAT_PATH, CHAT());
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-processed-by'), 'hello-world');
    assert.equal(r.headers.get('x-hello-context'), 'pre-hook-value');
    assert.equal(r.json.object, 'chat.completion');
  });

  it('logs its hooks in order with the request id, and Content-Type (read case-insensitively) at debug', async () => {
    const id = 'hello-c-order-1';
    await gw.post(CHAT_PATH, CHAT(), { 'x-request-id': id });
    const mine = gw.logs.filter((l) => l.rid === id && l.plugin === 'hello-world-c');
    assert.deepEqual(mine.filter((l) => l.level === 30).map((l) => l.msg),
      ['HTTPTransportPreHook called', 'PreLLMHook called', 'PostLLMHook called', 'HTTPTransportPostHook called']);
    const debug = mine.filter((l) => l.level === 20).map((l) => l.msg);
    assert.ok(debug.includes('Content-Type: application/json'), `debug lines: ${JSON.stringify(debug)}`);
    assert.ok(debug.includes('Context value: pre-hook-value'), `debug lines: ${JSON.stringify(debug)}`);
  });

  it('init ran on every worker ("Init called"), before any hook', () => {
    const inits = gw.logs.filter((l) => l.plugin === 'hello-world-c' && l.msg === 'Init called');
    assert.ok(inits.length >= 2, `Init called ${inits.length} time(s) for 2 workers`);
  });
});
