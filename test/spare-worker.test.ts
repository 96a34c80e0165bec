import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CHAT, startTestGateway, type TestGateway, testConfig } from './helpers/gateway.js';
import { fixture } from './helpers/paths.js';
import { stampPlugin } from './helpers/stamp-plugin.js';
import { waitFor } from './helpers/wait.js';

// The pool keeps one spare thread, started in the background once plugins are
// loaded: when a worker is terminated after a deadline, the spare takes its
// place at once (no thread start on any call's path) and the next spare
// starts behind it. A spare that started before a plugin was loaded learns it.

const dir = mkdtempSync(path.join(tmpdir(), 'sandgate-spare-worker-'));
const configFile = path.join(dir, 'config.json');
const A = path.join(dir, 'a.wasm');
const B = path.join(dir, 'b.wasm');
writeFileSync(A, stampPlugin('a'));
writeFileSync(B, stampPlugin('b'));
// One worker: whatever runs after the storm's deadline runs in the thread that replaced it.
const runtime = { workers: 1, watch_plugins: false, watch_config: false };
/**
 * A worker is still terminated when a call cannot be stopped from inside the
 * guest: an instance's init (not under the guest's clock) that loops. This
 * plugin's pre_llm_hook traps, which discards its instance; its next call
 * creates one, and an init run after `loopFrom` (Unix ms) never returns.
 */
const STORM = (loopFrom: number) => ({ name: 'storm', path: fixture('init-loop-after-time'), config: String(loopFrom), init_timeout_ms: 300, on_error: 'fail-open', circuit_breaker: { failure_threshold: 0 } });

describe('a spare worker takes a terminated worker\'s place', () => {
  let gw: TestGateway;
  const spare = () => gw.pool.stats().spare;
  before(async () => {
    const raw = { runtime, plugins: [{ name: 'a', path: A }] };
    writeFileSync(configFile, JSON.stringify(testConfig(raw)));
    gw = await startTestGateway(raw, { configFile });
  });
  after(() => gw.close());

  it('a spare starts once plugins are loaded, beside the pool\'s workers', async () => {
    await waitFor('a ready spare', () => spare() === 'ready', 10_000);
    const s = gw.pool.stats();
    assert.equal(s.workers, 1, 'the spare is not one of the workers');
    assert.equal(s.ready, 1);
  });

  it('after a deadline the spare replaces the worker, and knows the plugins loaded after it started', async () => {
    // Loaded after the spare started: it only learns of them by message.
    const loopFrom = Date.now() + 1500;
    writeFileSync(configFile, JSON.stringify(testConfig({ runtime, plugins: [{ name: 'a', path: A }, STORM(loopFrom), { name: 'b', path: B }] })));
    const report = await gw.reloadConfig('test');
    assert.equal(report.result, 'ok', JSON.stringify(report.error));
    assert.ok(Date.now() < loopFrom - 200, 'the reload finished before the storm (raise the margin)');
    assert.equal(spare(), 'ready');
    await waitFor('the storm time', () => Date.now() > loopFrom + 50, 5000);

    // The storm's hook traps (fail-open, skipped): its instance is discarded.
    assert.equal((await gw.post('/v1/chat/completions', CHAT('first'))).status, 200);
    const rid = 'spare-takes-over';
    const r = await gw.post('/v1/chat/completions', CHAT('creates a storm instance'), { 'x-request-id': rid });
    // fail-open: the storm is skipped at its init deadline; b's hooks then run in the thread that took the worker's place.
    assert.equal(r.status, 200, r.text);
    // Plugins run in order a, storm, b: b's transport post hook comes after the storm's deadline, so with
    // one worker it ran in the thread that took the terminated one's place.
    const hooks = gw.hooksFor(rid);
    assert.deepEqual(hooks, ['b:http_transport_post_hook', 'a:http_transport_post_hook'], hooks.join());
    assert.equal(r.headers.get('x-stamp'), 'a', 'a\'s post hook, the outermost, ran last');
    assert.ok(gw.logs.some((l) => l.plugin === 'storm' && l.rid === rid && l.kind === 'timeout'), 'the storm\'s init timed out');

    const replaced = gw.logs.filter((l) => l.msg === 'plugin worker replaced');
    assert.equal(replaced.length, 1, JSON.stringify(replaced));
    assert.equal(replaced[0].replacement, 'spare', 'the pre-started spare took the place');

    // And the next spare starts behind it.
    await waitFor('a new ready spare', () => spare() === 'ready', 10_000);
    assert.deepEqual({ workers: gw.pool.stats().workers, ready: gw.pool.stats().ready }, { workers: 1, ready: 1 });
  });
});
