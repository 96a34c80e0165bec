import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';
import { CHAT, startGatewayFails, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { fixture } from './helpers/paths.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'sandgate-load-'));

/** Starting must fail; returns the error. */
const startFails = (plugins: unknown[]): Promise<GatewayError> => startGatewayFails({ plugins });

describe('loading plugins', () => {
  it('refuses a missing .wasm, saying which file', async () => {
    const e = await startFails([{ name: 'gone', path: path.join(tmp, 'gone.wasm') }]);
    assert.equal(e.code, ErrorCode.pluginLoadFailed);
    assert.equal(e.plugin, 'gone');
    assert.match(e.message, /gone\.wasm: file not found/);
  });

  it('refuses a corrupt or truncated .wasm', async () => {
    const junk = path.join(tmp, 'junk.wasm');
    writeFileSync(junk, Buffer.from('this is not webassembly'));
    assert.equal((await startFails([{ name: 'junk', path: junk }])).code, ErrorCode.pluginLoadFailed);
    const truncated = path.join(tmp, 'truncated.wasm');
    const good = readFileSync(fixture('set-header'));
    writeFileSync(truncated, good.subarray(0, good.length - 7));
    const e = await startFails([{ name: 'truncated', path: truncated }]);
    assert.equal(e.code, ErrorCode.pluginLoadFailed);
    assert.match(e.message, /not a valid WebAssembly module/);
  });

  it('refuses a module built for another ABI version, saying what to rebuild', async () => {
    const e = await startFails([{ name: 'future', path: fixture('abi-v2') }]);
    assert.equal(e.code, ErrorCode.pluginAbiMismatch);
    assert.match(e.message, /built for Sandgate ABI v2.*speaks ABI v1.*rebuild/);
  });

  it('refuses a module that declares no ABI version', async () => {
    const e = await startFails([{ name: 'plain', path: fixture('no-abi') }]);
    assert.equal(e.code, ErrorCode.pluginAbiMismatch);
    assert.match(e.message, /does not declare a Sandgate ABI version/);
  });

  it('refuses a hook or marker export whose type is not () -> i32, naming the export and its type', async () => {
    const hook = await startFails([{ name: 'void-hook', path: fixture('hook-no-result') }]);
    assert.equal(hook.code, ErrorCode.pluginLoadFailed);
    assert.equal(hook.plugin, 'void-hook');
    assert.match(hook.message, /export "post_llm_hook" has type \(\) -> \(\), but the host calls it as \(\) -> i32/);
    const marker = await startFails([{ name: 'marker', path: fixture('abi-marker-with-param') }]);
    assert.equal(marker.code, ErrorCode.pluginLoadFailed);
    assert.match(marker.message, /export "sandgate_abi_v1" has type \(i32\) -> i32, but the host calls it as \(\) -> i32/);
    const global = await startFails([{ name: 'global', path: fixture('hook-is-global') }]);
    assert.equal(global.code, ErrorCode.pluginLoadFailed);
    assert.match(global.message, /export "pre_llm_hook" is a global, not a function/);
  });

  it('refuses a plugin whose init refuses, with its reason', async () => {
    const e = await startFails([{ name: 'picky', path: fixture('init-fail') }]);
    assert.equal(e.code, ErrorCode.pluginInitFailed);
    assert.match(e.message, /missing api_key in config/);
  });

  it('refuses a memory limit below what the module needs at start', async () => {
    const e = await startFails([{ name: 'big', path: fixture('big-initial-memory'), memory_limit_mb: 1 }]);
    assert.equal(e.code, ErrorCode.pluginLoadFailed);
    assert.match(e.message, /needs 32 pages.*raise memory_limit_mb/);
  });
});

describe('a fail-open plugin that cannot load', () => {
  let gw: TestGateway;
  after(() => gw?.close());

  it('is skipped with a warning and the gateway serves', async () => {
    gw = await startTestGateway({
      plugins: [
        { name: 'future', path: fixture('abi-v2'), on_error: 'fail-open' },
        { name: 'wat', path: fixture('set-header') },
      ],
    });
    assert.deepEqual(gw.plugins.map((p) => p.name), ['wat']);
    const warning = gw.logs.find((l) => l.plugin === 'future' && l.level === 40);
    assert.ok(warning, 'a warning names the skipped plugin');
    assert.equal(warning.code, ErrorCode.pluginAbiMismatch);
    const r = await gw.post('/v1/chat/completions', CHAT());
    assert.equal(r.status, 200);
  });
});

describe('a plugin using only the Extism kernel', () => {
  let gw: TestGateway;
  after(() => gw?.close());

  it('loads, gets its input through Extism and answers through output_set', async () => {
    gw = await startTestGateway({ plugins: [{ name: 'ext', path: fixture('extism-echo-name') }] });
    assert.deepEqual([...gw.plugins[0].hooks].sort(), ['get_name', 'http_transport_pre_hook']);
    // The hook answers 418 only when its envelope arrived in Extism's input, and only through output_set.
    const r = await gw.get('/anything');
    assert.equal(r.status, 418);
  });
});
