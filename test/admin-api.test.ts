import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway, testConfig } from './helpers/gateway.js';
import { fixture } from './helpers/paths.js';
import { stampPlugin } from './helpers/stamp-plugin.js';

// The admin API through the real gateway: off without admin.token; with it,
// every /admin/ route needs the bearer token (401 otherwise, and the token is
// never logged); the routes are answered before the plugin chain, so a plugin
// that answers every request itself, or one that logs every path it sees,
// never meets them; disable, enable and reload show in requests and /health.

const TOKEN = 'admin-test-token-5f0c2e9a41b7';
const ENV_NAME = 'SANDGATE_TEST_ADMIN_TOKEN';
const dir = mkdtempSync(path.join(tmpdir(), 'sandgate-admin-'));
const STAMP = path.join(dir, 'stamp.wasm');
writeFileSync(STAMP, stampPlugin('s'));
const RUNTIME = { workers: 2, watch_plugins: false, watch_config: false };
/** Logs every path that reaches the chain (first), stamps responses. */
const PLUGINS = [
  { name: 'seer', path: fixture('log-transport-input') },
  { name: 'stamp', path: STAMP },
];
const auth = (token = TOKEN) => ({ authorization: `Bearer ${token}` });
/** Paths the seer plugin saw (its log lines hold its whole input envelope, the path included). */
const seen = (gw: TestGateway, p: string) => gw.logs.filter((l) => l.plugin === 'seer' && l.msg.includes(p)).length;

describe('admin API: off unless admin.token is set', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ runtime: RUNTIME, plugins: PLUGINS });
  });
  after(() => gw.close());

  it('/admin/ paths are ordinary requests then: through the chain, not found', async () => {
    const r = await gw.get('/admin/plugins', auth());
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, 'not_found');
    assert.equal(seen(gw, '/admin/plugins'), 1, 'the plugin chain saw it');
  });
});

describe('admin API with a token', () => {
  let gw: TestGateway;
  const configFile = path.join(dir, 'config.json');
  const raw = { runtime: RUNTIME, admin: { token: `env.${ENV_NAME}` }, plugins: PLUGINS };
  const health = async () => (await gw.get('/health')).json;
  const stampState = async () => (await health()).plugins.find((p: { name: string }) => p.name === 'stamp');
  const post = (p: string, headers: Record<string, string> = auth()) => gw.post(p, undefined, headers);

  before(async () => {
    process.env[ENV_NAME] = TOKEN;
    gw = await startTestGateway(raw, { configFile });
  });
  after(async () => {
    await gw.close();
    delete process.env[ENV_NAME];
  });

  it('refuses a request without the token, with a wrong one, or with another scheme: 401 admin_unauthorized', async () => {
    for (const headers of [{}, auth('wrong-token'), auth(`${TOKEN}x`), auth(TOKEN.slice(0, -1)), { authorization: `Basic ${TOKEN}` }, { authorization: TOKEN }]) {
      for (const r of [await gw.get('/admin/plugins', headers), await post('/admin/plugins/stamp/disable', headers), await post('/admin/reload', headers)]) {
        assert.equal(r.status, 401, JSON.stringify(headers));
        assert.equal(r.json.error.code, 'admin_unauthorized');
        assert.equal(r.json.error.type, 'invalid_request_error');
        assert.equal(r.headers.get('www-authenticate'), 'Bearer');
      }
    }
    assert.equal((await stampState()).state, 'ok', 'nothing was disabled');
  });

  it('GET /admin/plugins lists each plugin: version, sha256, state, loaded_at, hooks, calls, failures, circuit', async () => {
    await gw.get('/v1/models');
    const r = await gw.get('/admin/plugins', auth());
    assert.equal(r.status, 200);
    const stamp = r.json.plugins.find((p: { name: string }) => p.name === 'stamp');
    assert.equal(stamp.version, 1);
    assert.match(stamp.sha256, /^[0-9a-f]{64}$/);
    assert.equal(stamp.state, 'ok');
    assert.ok(!Number.isNaN(Date.parse(stamp.loaded_at)));
    assert.deepEqual([...stamp.hooks].sort(), ['cleanup', 'http_transport_post_hook', 'http_transport_stream_chunk_hook', 'init']);
    assert.ok(stamp.calls >= 1, `calls ${stamp.calls}`);
    assert.equal(stamp.failures, 0);
    assert.equal(stamp.circuit, 'closed');
    assert.deepEqual(r.json.plugins.map((p: { name: string }) => p.name), ['seer', 'stamp']);
  });

  it('disable takes a plugin out of requests until enable, which loads it again; /health shows both', async () => {
    const gen = (await stampState()).generation;
    let r = await post('/admin/plugins/stamp/disable');
    assert.equal(r.status, 200);
    assert.equal((await gw.get('/v1/models')).headers.get('x-stamp'), null, 'requests skip it');
    const h = await health();
    assert.equal(h.plugins.find((p: { name: string }) => p.name === 'stamp').state, 'disabled');
    assert.equal(h.status, 'ok', 'an operator choice, not a fault');
    r = await post('/admin/plugins/stamp/reload');
    assert.equal(r.status, 409, 'a disabled plugin is not reloaded');
    r = await post('/admin/plugins/stamp/enable');
    assert.equal(r.status, 200);
    assert.equal(r.json.result, 'ok');
    assert.equal((await gw.get('/v1/models')).headers.get('x-stamp'), 's');
    const now = await stampState();
    assert.equal(now.state, 'ok');
    assert.ok(now.generation > gen);
  });

  it('reload loads the file again: a new file serves, a broken one is refused (422) and the running version stays', async () => {
    writeFileSync(STAMP, stampPlugin('t'));
    let r = await post('/admin/plugins/stamp/reload');
    assert.equal(r.status, 200);
    assert.equal(r.json.result, 'ok');
    assert.equal((await gw.get('/v1/models')).headers.get('x-stamp'), 't');
    assert.equal((await stampState()).last_reload.trigger, 'admin');
    writeFileSync(STAMP, 'not wasm');
    r = await post('/admin/plugins/stamp/reload');
    assert.equal(r.status, 422);
    assert.equal(r.json.result, 'refused');
    assert.match(r.json.error, /not a valid WebAssembly module/);
    assert.equal((await gw.get('/v1/models')).headers.get('x-stamp'), 't');
    writeFileSync(STAMP, stampPlugin('t'));
    r = await post('/admin/plugins/nosuch/reload');
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, 'not_found');
  });

  it('POST /admin/reload applies the config file, ends run-time disables, and refuses an invalid one (422, same message as start-up)', async () => {
    await post('/admin/plugins/stamp/disable');
    writeFileSync(configFile, JSON.stringify(testConfig({ ...raw, plugins: [PLUGINS[1]] })));
    let r = await post('/admin/reload');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.result, 'ok');
    assert.deepEqual((await health()).plugins.map((p: { name: string; state: string }) => [p.name, p.state]), [['stamp', 'ok']], 'seer removed, stamp enabled again');
    assert.equal((await gw.get('/v1/models')).headers.get('x-stamp'), 't');
    writeFileSync(configFile, JSON.stringify(testConfig({ ...raw, plugins: [{ ...PLUGINS[1], on_error: 'sometimes' }] })));
    r = await post('/admin/reload');
    assert.equal(r.status, 422);
    assert.equal(r.json.result, 'refused');
    assert.equal(r.json.error.code, 'config_invalid');
    assert.match(r.json.error.message, /plugins\[0\]\.on_error/);
    writeFileSync(configFile, JSON.stringify(testConfig(raw)));
    assert.equal((await post('/admin/reload')).status, 200);
  });

  it('admin routes, /health and /metrics are answered before the chain: a plugin that answers everything cannot hide them, one that logs every path never sees them', async () => {
    writeFileSync(configFile, JSON.stringify(testConfig({ ...raw, plugins: [PLUGINS[0], { name: 'wall', path: fixture('respond-pre-transport') }] })));
    assert.equal((await post('/admin/reload')).status, 200);
    const ordinary = await gw.get('/v1/models');
    assert.equal(ordinary.status, 418, 'the wall answers ordinary requests');
    assert.equal(ordinary.headers.get('x-answered-by'), 'plugin');
    assert.ok(seen(gw, '/v1/models') >= 1, 'the seer sees ordinary paths');
    const list = await gw.get('/admin/plugins', auth());
    assert.equal(list.status, 200);
    assert.deepEqual(list.json.plugins.map((p: { name: string }) => p.name), ['seer', 'wall']);
    assert.equal((await gw.get('/admin/plugins')).status, 401, 'the wall did not answer the unauthorised one either');
    assert.equal((await post('/admin/plugins/wall/disable')).status, 200);
    assert.equal((await gw.get('/v1/models')).status, 200, 'with the wall disabled, requests pass');
    assert.equal((await post('/admin/plugins/wall/enable')).status, 200);
    assert.equal((await gw.get('/admin/nosuch', auth())).status, 404);
    assert.equal((await gw.get('/health')).status, 200);
    assert.equal((await gw.get('/metrics')).status, 200);
    assert.equal(seen(gw, '/admin'), 0, 'no admin path reached a plugin');
    assert.equal(seen(gw, '/health') + seen(gw, '/metrics'), 0);
  });

  it('the token appears in no log line', async () => {
    assert.ok(gw.logs.length > 50);
    assert.ok(gw.logs.some((l) => l.msg === 'admin request refused: missing or wrong bearer token'));
    const text = gw.logs.map((l) => JSON.stringify(l)).join('\n');
    assert.ok(!text.includes(TOKEN), 'the token was logged');
    assert.ok(!text.includes(TOKEN.slice(0, 12)), 'part of the token was logged');
  });
});
