import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { samplePlugin } from './helpers/paths.js';

// sample-plugins/hello-world-rust (the Rust PDK's hello-world) through the real
// gateway: the same observable behaviour as the AssemblyScript hello-world.

describe('hello-world-rust through the gateway', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      plugins: [{ name: 'hello-world', path: samplePlugin('hello-world-rust'), config: { greeting: 'hello' }, on_error: 'fail-closed' }],
    });
  });
  after(() => gw.close());

  it('loads: init ran on the worker and said so', () => {
    assert.ok(gw.logs.some((l) => l.plugin === 'hello-world' && l.msg === 'Init called'));
  });

  it('sets x-processed-by, and x-hello-context from the value its pre hook put in the context', async () => {
    const r = await gw.post('/v1/chat/completions', CHAT('Hi from Rust'));
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, 'Hi from Rust');
    assert.equal(r.headers.get('x-processed-by'), 'hello-world');
    assert.equal(r.headers.get('x-hello-context'), 'pre-hook-value');
  });

  it('logs each hook in order with the request id, and reads Content-Type case-insensitively', async () => {
    const rid = 'rust-hello-1';
    await gw.post('/v1/chat/completions', CHAT(), { 'x-request-id': rid });
    assert.deepEqual(gw.hooksFor(rid), [
      'hello-world:http_transport_pre_hook',
      'hello-world:pre_llm_hook',
      'hello-world:post_llm_hook',
      'hello-world:http_transport_post_hook',
    ]);
    const said = gw.logs.filter((l) => l.rid === rid && l.plugin === 'hello-world' && l.level === 30).map((l) => l.msg);
    assert.deepEqual(said, ['HTTPTransportPreHook called', 'PreLLMHook called', 'PostLLMHook called', 'HTTPTransportPostHook called']);
    const debug = gw.logs.filter((l) => l.rid === rid && l.plugin === 'hello-world' && l.level === 20).map((l) => l.msg);
    assert.ok(debug.includes('Content-Type: application/json'), debug.join(' | '));
    assert.ok(debug.includes('Context value: pre-hook-value'), debug.join(' | '));
  });

  it('a streamed answer passes through it (no transport post hook for streams)', async () => {
    const r = await gw.post('/v1/chat/completions', { ...CHAT('one two'), stream: true });
    assert.equal(r.status, 200);
    assert.match(r.text, /data: \[DONE\]/);
    assert.equal(r.headers.get('x-processed-by'), null);
  });
});
