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
// One worker: whatever runs after the loop's deadline runs in the thread that replaced it.
const runtime = { workers: 1, watch_plugins: false, watch_config: false };
const LOOP = { name: 'loop', path: fixture('loop-llm'), timeout_ms: 200, on_error: 'fail-open', circuit_breaker: { failure_threshold: 0 } };

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
    writeFileSync(configFile, JSON.stringify(testConfig({ runtime, plugins: [{ name: 'a', path: A }, LOOP, { name: 'b', path: B }] })));
    const report = await gw.reloadConfig('test');
    assert.equal(report.result, 'ok', JSON.stringify(report.error));
    assert.equal(spare(), 'ready');

    const rid = 'spare-takes-over';
    const r = await gw.post('/v1/chat/completions', CHAT('reaches the loop'), { 'x-request-id': rid });
    // fail-open: the loop is skipped at its deadline; b's hooks then run in the thread that took the worker's place.
    assert.equal(r.status, 200, r.text);
    // Plugins run in order a, loop, b: b's transport post hook comes after the loop's deadline, so with
    // one worker it ran in the thread that took the terminated one's place.
    const hooks = gw.hooksFor(rid);
    assert.deepEqual(hooks, ['b:http_transport_post_hook', 'a:http_transport_post_hook'], hooks.join());
    assert.equal(r.headers.get('x-stamp'), 'a', 'a\'s post hook, the outermost, ran last');
    assert.ok(gw.logs.some((l) => l.plugin === 'loop' && l.rid === rid && l.kind === 'timeout'), 'the loop timed out');

    const replaced = gw.logs.filter((l) => l.msg === 'plugin worker replaced');
    assert.equal(replaced.length, 1, JSON.stringify(replaced));
    assert.equal(replaced[0].replacement, 'spare', 'the pre-started spare took the place');

    // And the next spare starts behind it.
    await waitFor('a new ready spare', () => spare() === 'ready', 10_000);
    assert.deepEqual({ workers: gw.pool.stats().workers, ready: gw.pool.stats().ready }, { workers: 1, ready: 1 });
  });
});
