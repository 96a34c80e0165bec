import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CHAT, startTestGateway, type TestGateway, testConfig } from './helpers/gateway.js';
import { stampPlugin } from './helpers/stamp-plugin.js';

// Plugin worker threads cost memory even idle, so the pool starts them only
// when the first plugin loads: a gateway without plugins has none, and one
// that gets its first plugin through a config reload starts them then.

const WORKERS = 2;
const dir = mkdtempSync(path.join(tmpdir(), 'sandgate-lazy-workers-'));
const configFile = path.join(dir, 'config.json');
const A = path.join(dir, 'a.wasm');
writeFileSync(A, stampPlugin('a'));
const base = (plugins: { name: string; path: string }[]) => ({ runtime: { workers: WORKERS, watch_plugins: false, watch_config: false }, plugins });

describe('plugin worker threads start with the first plugin', () => {
  let gw: TestGateway;
  const health = async () => (await gw.get('/health')).json;

  before(async () => {
    writeFileSync(configFile, JSON.stringify(testConfig(base([]))));
    gw = await startTestGateway(base([]), { configFile });
  });
  after(() => gw.close());

  it('a gateway with no plugins has no plugin workers, serves requests and is healthy', async () => {
    const r = await gw.post('/v1/chat/completions', CHAT('no plugins'));
    assert.equal(r.status, 200, r.text);
    const h = await health();
    assert.equal(h.workers.workers, 0, 'no plugin threads');
    assert.equal(h.workers.ready, 0);
    assert.equal(h.status, 'ok', 'no plugins and no workers is not degraded');
  });

  it('a plugin added by config reload starts the workers and runs', async () => {
    writeFileSync(configFile, JSON.stringify(testConfig(base([{ name: 'a', path: A }]))));
    const report = await gw.reloadConfig('test');
    assert.equal(report.result, 'ok', JSON.stringify(report.error));
    const h = await health();
    assert.equal(h.workers.workers, WORKERS);
    assert.equal(h.workers.ready, WORKERS);
    assert.equal(h.status, 'ok');
    const rid = 'lazy-after-reload';
    const r = await gw.post('/v1/chat/completions', CHAT('with a plugin'), { 'x-request-id': rid });
    assert.equal(r.status, 200, r.text);
    assert.ok(gw.hooksFor(rid).some((h) => h.startsWith('a:')), `plugin a ran: ${gw.hooksFor(rid).join()}`);
  });
});
