import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfigFile } from '../host/config/load.js';
import { CHAT, startTestGateway, type TestGateway, testConfig } from './helpers/gateway.js';
import { metricValue } from './helpers/metrics.js';
import { stampPlugin } from './helpers/stamp-plugin.js';
import { completion } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';

// Config reload through the real gateway, run from a config file that each
// test rewrites and then reloads (the same path SIGHUP, a file change and
// POST /admin/reload take; those triggers have tests of their own). Every
// change kind applies without a restart; a change refused keeps everything as
// it was; a request sees the old chain or the new one.

const WORKERS = 2;
const dir = mkdtempSync(path.join(tmpdir(), 'sandgate-config-reload-'));
const configFile = path.join(dir, 'config.json');
const wasm = (stamp: string, bytes: Uint8Array = stampPlugin(stamp)) => {
  const file = path.join(dir, `${stamp}.wasm`);
  writeFileSync(file, bytes);
  return file;
};
const A = wasm('a');
const B = wasm('b');
const C = wasm('c');
const NOT_WASM = wasm('broken', Buffer.from('not wasm at all'));

type Plugin = Record<string, unknown> & { name: string; path: string };
const RUNTIME = { workers: WORKERS, watch_plugins: false, watch_config: false };
const base = (plugins: Plugin[], extra: Record<string, unknown> = {}) => ({ runtime: RUNTIME, plugins, ...extra });

describe('config reload: changes to the config file apply without a restart', () => {
  let gw: TestGateway;
  let rids = 0;

  /** Rewrites the config file and reloads it. */
  const apply = async (raw: Record<string, unknown>) => {
    writeFileSync(configFile, JSON.stringify(testConfig(raw)));
    return gw.reloadConfig('test');
  };
  /** The plugins one new request runs through, in the order their post-hooks ran. */
  const chain = async () => {
    const rid = `chain-${++rids}`;
    const r = await gw.get('/v1/models', { 'x-request-id': rid });
    assert.equal(r.status, 200);
    return gw.hooksFor(rid).map((h) => h.split(':')[0]);
  };
  const health = async () => (await gw.get('/health')).json;
  const plugin = async (name: string) => (await health()).plugins.find((p: { name: string }) => p.name === name);
  const reloadsMetric = async (result: string) => metricValue((await gw.get('/metrics')).text, 'sandgate_config_reloads_total', { result });
  const cleanups = (stamp: string) => gw.logs.filter((l) => l.msg === `cleanup ${stamp}`).length;

  before(async () => {
    gw = await startTestGateway(base([{ name: 'a', path: A }]), { configFile });
  });
  after(() => gw.close());

  it('a plugin added joins the chain; the running one keeps its version', async () => {
    const genA = (await plugin('a')).generation;
    const report = await apply(base([{ name: 'a', path: A }, { name: 'b', path: B }]));
    assert.equal(report.result, 'ok', JSON.stringify(report.error));
    assert.deepEqual(report.plugins?.loaded, ['b']);
    assert.deepEqual(await chain(), ['b', 'a'], 'post-hooks run in reverse order: the chain is a, b');
    assert.equal((await plugin('a')).generation, genA, 'a was not reloaded');
    assert.equal((await plugin('b')).last_reload.trigger, 'config');
  });

  it('reordering swaps the order without reloading anything', async () => {
    const gens = [(await plugin('a')).generation, (await plugin('b')).generation];
    const report = await apply(base([{ name: 'b', path: B }, { name: 'a', path: A }]));
    assert.deepEqual(report.plugins?.loaded, []);
    assert.deepEqual(await chain(), ['a', 'b']);
    assert.deepEqual([(await plugin('a')).generation, (await plugin('b')).generation], gens);
  });

  for (const [key, value] of [
    ['config', { greeting: 'hi' }],
    ['on_error', 'fail-open'],
    ['timeout_ms', 250],
    ['memory_limit_mb', 32],
    ['version', 2],
  ] as const) {
    it(`a plugin whose ${key} changed is reloaded as a new version (the file did not change); the old one is retired`, async () => {
      const before = await plugin('a');
      const cleanedBefore = cleanups('a');
      const report = await apply(base([{ name: 'b', path: B }, { name: 'a', path: A, [key]: value }]));
      assert.deepEqual(report.plugins?.loaded, ['a']);
      const now = await plugin('a');
      assert.ok(now.generation > before.generation, 'a new version');
      assert.equal(now.sha256, before.sha256, 'of the same file');
      assert.equal(now.last_reload.trigger, 'config');
      if (key === 'on_error' || key === 'version') assert.equal(now[key], value);
      assert.deepEqual(await chain(), ['a', 'b']);
      await waitFor('cleanup of the old a', () => cleanups('a') === cleanedBefore + WORKERS);
    });
  }

  it('a plugin disabled or removed leaves the chain and is retired', async () => {
    const cleanedB = cleanups('b');
    let report = await apply(base([{ name: 'b', path: B, enabled: false }, { name: 'a', path: A }]));
    assert.deepEqual(report.plugins?.removed, ['b']);
    assert.deepEqual(await chain(), ['a']);
    assert.deepEqual((await health()).plugins.map((p: { name: string }) => p.name), ['a']);
    await waitFor('cleanup of b', () => cleanups('b') === cleanedB + WORKERS);
    report = await apply(base([{ name: 'b', path: B }, { name: 'a', path: A }]));
    assert.deepEqual(report.plugins?.loaded, ['b'], 'enabled again');
    report = await apply(base([{ name: 'a', path: A }]));
    assert.deepEqual(report.plugins?.removed, ['b']);
    assert.deepEqual(await chain(), ['a']);
  });

  it('providers added and changed apply to new requests; a request in flight finishes on the old one', async () => {
    const slow = apply(base([{ name: 'a', path: A }], { providers: { mock: { type: 'mock', latency_ms: 400 } } }));
    assert.equal((await slow).result, 'ok');
    const inFlight = gw.post('/v1/chat/completions', CHAT('slow one'));
    await new Promise((r) => setTimeout(r, 100));
    const report = await apply(base([{ name: 'a', path: A }], { providers: { mock: { type: 'mock' }, other: { type: 'mock' } } }));
    assert.deepEqual(report.providers, { added: ['other'], changed: ['mock'], removed: [] });
    const started = Date.now();
    assert.equal((await gw.post('/v1/chat/completions', { ...CHAT(), model: 'other/echo' })).status, 200, 'the new provider answers');
    assert.equal((await gw.post('/v1/chat/completions', CHAT())).status, 200);
    assert.ok(Date.now() - started < 300, 'new requests use the changed provider (no latency)');
    assert.equal((await inFlight).status, 200, 'the request in flight finished on the old provider');
    const models = (await gw.get('/v1/models')).json.data.map((m: { id: string }) => m.id);
    assert.ok(models.includes('other/echo'), models.join());
  });

  it('an invalid config is refused whole with the start-up message; the running config, chain and /health stay', async () => {
    const healthBefore = await health();
    const refusedBefore = await reloadsMetric('refused');
    const bad = base([{ name: 'a', path: A }, { name: 'c', path: C, timeout_ms: -5 }], { providers: { mock: { type: 'mock' }, third: { type: 'mock' } } });
    const report = await apply(bad);
    assert.equal(report.result, 'refused');
    let startupMessage = '';
    try {
      loadConfigFile(configFile);
    } catch (e) {
      startupMessage = (e as Error).message;
    }
    assert.match(startupMessage, /plugins\[1\]\.timeout_ms/);
    assert.equal(report.error?.message, startupMessage, 'the same message start-up gives');
    assert.equal(report.error?.code, 'config_invalid');
    assert.deepEqual(await health(), healthBefore, '/health unchanged');
    assert.deepEqual(await chain(), ['a']);
    assert.equal((await gw.post('/v1/chat/completions', { ...CHAT(), model: 'third/echo' })).status, 400, 'the provider of the refused config was not added');
    assert.equal(await reloadsMetric('refused'), refusedBefore + 1);
    const lines = gw.logs.filter((l) => l.msg === 'config reload refused; the running config stays');
    assert.equal(lines.length, 1);
    assert.match(String(lines[0].err), /plugins\[1\]\.timeout_ms/);
  });

  it('a fail-closed plugin that cannot load refuses the whole reload; what was loaded for it is released', async () => {
    const C2 = wasm('c2');
    const report = await apply(
      base([{ name: 'a', path: C2 }, { name: 'broken', path: NOT_WASM }], { providers: { mock: { type: 'mock' }, fourth: { type: 'mock' } } }),
    );
    assert.equal(report.result, 'refused');
    assert.equal(report.error?.code, 'plugin_load_failed');
    assert.match(report.error!.message, /plugin "broken" \(fail-closed\) cannot load/);
    assert.equal((await gw.get('/v1/models')).headers.get('x-stamp'), 'a', 'a still serves its running version');
    assert.deepEqual(await chain(), ['a']);
    assert.equal((await gw.post('/v1/chat/completions', { ...CHAT(), model: 'fourth/echo' })).status, 400, 'no provider of the refused config was added');
    await waitFor('the version loaded for the refused config released', () => cleanups('c2') === WORKERS);
  });

  it('a fail-open plugin that cannot load is left out, as at start-up; the rest applies', async () => {
    const report = await apply(base([{ name: 'a', path: A }, { name: 'broken', path: NOT_WASM, on_error: 'fail-open' }, { name: 'c', path: C }]));
    assert.equal(report.result, 'ok');
    assert.deepEqual(report.plugins?.loaded, ['c']);
    assert.deepEqual(report.plugins?.skipped.map((s) => s.name), ['broken']);
    assert.deepEqual(await chain(), ['c', 'a']);
    assert.equal((await plugin('broken')).state, 'not_loaded');
    assert.equal((await plugin('broken')).last_reload.result, 'refused');
  });

  it('changed trust settings verify every plugin again: requiring signatures refuses unsigned ones, signing them applies', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const key = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64');
    const trust = { trusted_keys: { ops: key }, require_signature: true };
    let report = await apply(base([{ name: 'a', path: A }], trust));
    assert.equal(report.result, 'refused');
    assert.equal(report.error?.code, 'plugin_integrity_failed');
    assert.deepEqual(await chain(), ['c', 'a'], 'nothing changed');
    for (const file of [A]) writeFileSync(`${file}.sig`, `ed25519:ops:${sign(null, readFileSync(file), privateKey).toString('base64')}\n`);
    const genA = (await plugin('a')).generation;
    report = await apply(base([{ name: 'a', path: A }], trust));
    assert.equal(report.result, 'ok', JSON.stringify(report.error));
    assert.equal(report.trust_changed, true);
    assert.ok((await plugin('a')).generation > genA, 'a was verified and loaded again');
    assert.deepEqual(await chain(), ['a']);
    report = await apply(base([{ name: 'a', path: A }]));
    assert.equal(report.result, 'ok');
  });

  it('a change that needs a restart is logged as such, and the rest applies', async () => {
    const report = await apply({ ...base([{ name: 'a', path: A }, { name: 'b', path: B }]), runtime: { ...RUNTIME, workers: WORKERS + 1 }, server: { port: 0, max_body_bytes: 1000 } });
    assert.equal(report.result, 'ok');
    assert.deepEqual(report.restart_required, ['server.max_body_bytes', 'runtime.workers']);
    assert.deepEqual(await chain(), ['b', 'a'], 'the plugin change applied');
    assert.equal(gw.pool.size, WORKERS, 'the pool kept its size');
    const line = gw.logs.find((l) => l.msg.startsWith('config changes need a restart to apply'));
    assert.ok(line, 'logged');
    assert.deepEqual(line.keys, ['server.max_body_bytes', 'runtime.workers']);
  });

  it('counts each reload by result', async () => {
    const ok = await reloadsMetric('ok');
    assert.ok(ok >= 10, `ok reloads counted: ${ok}`);
    assert.equal(await reloadsMetric('refused'), 3);
  });
});

describe('config reload: a replaced provider is closed once its requests have finished', () => {
  const file = path.join(dir, 'providers.json');
  const sockets = new Set<Socket>();
  let server: Server;
  let gw: TestGateway;
  const provider = (timeout_ms: number) => ({ runtime: RUNTIME, providers: { up: { type: 'openai', base_url: upstreamUrl, timeout_ms } } });
  let upstreamUrl = '';

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const slow = body.includes('slow');
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(completion('from upstream')));
        }, slow ? 300 : 0);
      });
    });
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    upstreamUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    gw = await startTestGateway(provider(5000), { configFile: file });
  });
  after(async () => {
    await gw.close();
    server.closeAllConnections();
    server.close();
  });

  it('the request in flight finishes on the old provider, whose connections close after it; new requests use new ones', async () => {
    const chat = (content: string) => gw.post('/v1/chat/completions', { ...CHAT(content), model: 'up/gpt' });
    assert.equal((await chat('warm')).status, 200);
    const inFlight = chat('slow');
    await new Promise((r) => setTimeout(r, 50));
    const before = new Set(sockets);
    assert.ok(before.size >= 1);
    writeFileSync(file, JSON.stringify(testConfig(provider(6000))));
    const report = await gw.reloadConfig('test');
    assert.deepEqual(report.providers, { added: [], changed: ['up'], removed: [] });
    assert.ok([...before].some((s) => sockets.has(s)), 'the old connection stays while its request runs');
    assert.equal((await chat('after')).status, 200);
    assert.equal((await inFlight).status, 200, 'the request in flight finished');
    // Well within the keep-alive timeouts (4 s in undici, 5 s in node's server): only the close can do this.
    const until = Date.now() + 1500;
    while ([...before].some((s) => sockets.has(s))) {
      if (Date.now() > until) assert.fail('the old provider\'s connections are still open');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(sockets.size >= 1, 'the new provider keeps its own connection');
  });
});
