import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startCli, startCommand, writeConfigFile } from './helpers/cli.js';
import { CHAT } from './helpers/gateway.js';
import { CLI, fixture, samplePlugin } from './helpers/paths.js';

describe('graceful shutdown', () => {
  it('on SIGTERM: in-flight requests finish, cleanup runs, exit code 0', async () => {
    const gw = await startCli({
      log_level: 'info',
      plugins: [
        { name: 'hello-world', path: samplePlugin('hello-world') },
        // Holds each request in pre_llm_hook for 50 ms, so it is in flight when SIGTERM arrives.
        { name: 'slow', path: fixture('slow-llm'), timeout_ms: 1000 },
      ],
    });
    const inFlight = Array.from({ length: 4 }, () =>
      fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CHAT('finish me')) }),
    );
    // Signal only once all four are inside the gateway (hello-world logs each transport pre-hook):
    // a request not yet accepted when the listener closes is rightly refused.
    while ((gw.output().match(/HTTPTransportPreHook called/g) ?? []).length < 4) await new Promise((r) => setTimeout(r, 5));
    const exited = new Promise<number | null>((resolve) => gw.child.on('exit', resolve));
    gw.child.kill('SIGTERM');
    const responses = await Promise.all(inFlight);
    assert.deepEqual(
      responses.map((r) => r.status),
      [200, 200, 200, 200],
      'requests in flight at SIGTERM are answered',
    );
    assert.equal(await exited, 0);
    const logs = gw.output();
    assert.match(logs, /"msg":"shutting down"/);
    // One hello-world instance per worker, each cleaned up.
    assert.ok((logs.match(/Cleanup called/g) ?? []).length >= 1, 'the plugin cleanup ran');
    assert.ok(logs.indexOf('Cleanup called') > logs.lastIndexOf('PostLLMHook called'), 'cleanup ran after the in-flight calls ended');
    assert.match(logs, /"msg":"gateway stopped"/);
  });

  it('on SIGINT too; new connections are refused once it stops accepting', async () => {
    const gw = await startCli({ plugins: [{ name: 'hello-world', path: samplePlugin('hello-world') }] });
    const exited = new Promise<number | null>((resolve) => gw.child.on('exit', resolve));
    gw.child.kill('SIGINT');
    assert.equal(await exited, 0);
    await assert.rejects(fetch(`${gw.url}/health`), 'nothing listens after shutdown');
  });

  it('node flags meant for the process (heap size, GC, inspector) do not stop the plugin workers from starting', async () => {
    const file = writeConfigFile({ plugins: [{ name: 'hello-world', path: samplePlugin('hello-world') }] });
    const gw = await startCommand(process.execPath, ['--max-old-space-size=512', '--expose-gc', CLI, '--config', file, '--port', '0']);
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CHAT()) });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-processed-by'), 'hello-world', 'the plugin ran in a worker');
    const exited = new Promise<number | null>((resolve) => gw.child.on('exit', resolve));
    gw.child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
