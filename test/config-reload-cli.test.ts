import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CliGateway, startCli } from './helpers/cli.js';
import { stampPlugin } from './helpers/stamp-plugin.js';
import { waitFor as waitUntil } from './helpers/wait.js';

// Config reload in the real CLI process: SIGHUP reloads and never stops the
// process (its default action would, with exit 129), also when the new config
// is invalid; the config file is watched (a write in place and a rename over
// it both count, a half-written file is waited for).

const dir = mkdtempSync(path.join(tmpdir(), 'sandgate-reload-cli-'));
const STAMP = path.join(dir, 'stamp.wasm');
writeFileSync(STAMP, stampPlugin('h'));

/** Child processes take longer than in-process gateways: 8 s. */
const waitFor = (what: string, ok: () => Promise<boolean> | boolean) => waitUntil(what, ok, 8000);

const lines = (gw: CliGateway, msg: string) => gw.output().split('\n').filter((l) => l.includes(`"msg":"${msg}`));
const stampOf = async (gw: CliGateway) => (await fetch(`${gw.url}/v1/models`)).headers.get('x-stamp');

describe('SIGHUP reloads the config and never stops the gateway', () => {
  let gw: CliGateway;
  const config = (extra: Record<string, unknown> = {}) => ({ runtime: { workers: 1, watch_config: false }, ...extra });
  before(async () => {
    gw = await startCli(config());
  });
  after(() => {
    if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
  });

  it('several SIGHUPs: each reloads, the process keeps serving', async () => {
    for (let i = 1; i <= 3; i++) {
      gw.child.kill('SIGHUP');
      await waitFor(`reload ${i}`, () => lines(gw, 'config reloaded').length === i);
    }
    assert.equal(gw.child.exitCode, null);
    assert.equal((await fetch(`${gw.url}/health`)).status, 200);
  });

  it('a plugin added to the file is loaded on SIGHUP', async () => {
    writeFileSync(gw.configFile, JSON.stringify(config({ plugins: [{ name: 'stamp', path: STAMP }] })));
    gw.child.kill('SIGHUP');
    await waitFor('the stamp plugin', async () => (await stampOf(gw)) === 'h');
  });

  it('an invalid config on SIGHUP is refused in one log line with the start-up message; the process and its plugins keep serving', async () => {
    writeFileSync(gw.configFile, JSON.stringify(config({ plugins: [{ name: 'stamp', path: STAMP, on_eror: 'fail-open' }] })));
    for (let i = 1; i <= 2; i++) {
      gw.child.kill('SIGHUP');
      await waitFor(`refusal ${i}`, () => lines(gw, 'config reload refused; the running config stays').length === i);
    }
    const line = JSON.parse(lines(gw, 'config reload refused')[0]);
    assert.equal(line.code, 'config_invalid');
    assert.match(line.err, /plugins\[0\]: unknown key\(s\) "on_eror"/);
    assert.equal(gw.child.exitCode, null);
    assert.equal(await stampOf(gw), 'h');
  });

  it('a change that needs a restart is logged as such; the rest applies', async () => {
    writeFileSync(gw.configFile, JSON.stringify({ ...config(), runtime: { workers: 2, watch_config: false }, plugins: [] }));
    gw.child.kill('SIGHUP');
    await waitFor('the restart notice', () => lines(gw, 'config changes need a restart to apply: runtime.workers').length === 1);
    await waitFor('the plugin removed', async () => (await stampOf(gw)) === null);
  });

  it('SIGTERM still drains and exits 0 after all that', async () => {
    gw.child.kill('SIGTERM');
    const [code] = await once(gw.child, 'exit');
    assert.equal(code, 0);
  });
});

describe('the config file is watched', () => {
  let gw: CliGateway;
  const config = (plugins: unknown[]) => ({ runtime: { workers: 1, reload_debounce_ms: 50, reload_settle_ms: 1500 }, plugins });
  before(async () => {
    gw = await startCli(config([]));
  });
  after(() => {
    if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
  });

  it('a write in place applies', async () => {
    writeFileSync(gw.configFile, JSON.stringify(config([{ name: 'stamp', path: STAMP }])));
    await waitFor('the stamp plugin', async () => (await stampOf(gw)) === 'h');
  });

  it('a rename over the file applies', async () => {
    const tmp = `${gw.configFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(config([])));
    renameSync(tmp, gw.configFile);
    await waitFor('the plugin removed', async () => (await stampOf(gw)) === null);
  });

  it('a file written in two steps is applied once complete, never refused half-written', async () => {
    const text = JSON.stringify(config([{ name: 'stamp', path: STAMP }]));
    writeFileSync(gw.configFile, text.slice(0, 20));
    setTimeout(() => writeFileSync(gw.configFile, text), 300).unref();
    await waitFor('the stamp plugin', async () => (await stampOf(gw)) === 'h');
    assert.equal(lines(gw, 'config reload refused').length, 0);
  });
});
