import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../host/config/load.js';
import { DEFAULTS, MAX_JSON_DEPTH } from '../host/config/schema.js';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';
import { CLI, fixture, ROOT } from './helpers/paths.js';

function configError(raw: unknown, env: NodeJS.ProcessEnv = {}): GatewayError {
  try {
    parseConfig(raw, { baseDir: ROOT, env });
  } catch (e) {
    assert.ok(e instanceof GatewayError, `expected a GatewayError, got ${String(e)}`);
    return e;
  }
  assert.fail('config was accepted');
}

/** Runs the CLI to completion (or kills it after timeoutMs) and returns its exit code and output. */
function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function tempConfig(value: unknown): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sandgate-cfg-'));
  const file = path.join(dir, 'config.json');
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
}

describe('config.json validation', () => {
  it('fills documented defaults', () => {
    const cfg = parseConfig({ plugins: [{ name: 'p', path: 'x.wasm' }] }, { baseDir: ROOT, env: {} });
    assert.equal(cfg.server.port, DEFAULTS.port);
    assert.equal(cfg.server.host, DEFAULTS.host);
    const p = cfg.plugins[0];
    assert.deepEqual(
      { enabled: p.enabled, version: p.version, on_error: p.on_error, timeout_ms: p.timeout_ms, memory_limit_mb: p.memory_limit_mb },
      { enabled: true, version: 1, on_error: 'fail-closed', timeout_ms: DEFAULTS.hookTimeoutMs, memory_limit_mb: DEFAULTS.memoryLimitMb },
    );
    assert.equal(p.max_log_bytes_per_second, 65536, 'the README and ABI.md §7.1 name this default');
    assert.match(configError({ plugins: [{ name: 'p', path: 'x.wasm', max_log_bytes_per_second: 0 }] }).message, /plugins\[0\]\.max_log_bytes_per_second/);
    assert.equal(p.path, path.join(ROOT, 'x.wasm'), 'relative plugin paths resolve against the config directory');
    assert.deepEqual(Object.keys(cfg.providers), ['mock'], 'the mock provider is there when none are configured');
  });

  it('fills the limits block and bounds max_json_depth below what the host codec can recurse', () => {
    const cfg = parseConfig({}, { baseDir: ROOT, env: {} });
    assert.deepEqual(cfg.limits, { max_json_depth: DEFAULTS.maxJsonDepth, max_context_bytes: DEFAULTS.maxContextBytes });
    assert.match(configError({ limits: { max_json_depth: MAX_JSON_DEPTH + 1 } }).message, /limits\.max_json_depth/);
    assert.match(configError({ limits: { max_context_bytes: 0 } }).message, /limits\.max_context_bytes/);
    assert.match(configError({ limits: { max_depth: 10 } }).message, /limits.*"max_depth"/);
  });

  it('names the JSON path and what is expected', () => {
    const e = configError({ plugins: [{ name: 'p', path: 'x.wasm', timeout_ms: -5 }] });
    assert.equal(e.code, ErrorCode.configInvalid);
    assert.match(e.message, /plugins\[0\]\.timeout_ms/);
  });

  it('rejects unknown keys, so typos are caught', () => {
    const e = configError({ plugins: [{ name: 'p', path: 'x.wasm', timout_ms: 5 }] });
    assert.match(e.message, /plugins\[0\].*"timout_ms"/);
  });

  it('rejects a bad on_error value and duplicate plugin names', () => {
    assert.match(configError({ plugins: [{ name: 'p', path: 'x', on_error: 'ignore' }] }).message, /plugins\[0\]\.on_error/);
    assert.match(configError({ plugins: [{ name: 'p', path: 'x' }, { name: 'p', path: 'y' }] }).message, /plugins\[1\]\.name: duplicate/);
  });

  it('substitutes "env.NAME" strings anywhere', () => {
    const cfg = parseConfig(
      { providers: { up: { type: 'openai', base_url: 'env.UP_URL', api_key: 'env.UP_KEY' } }, plugins: [{ name: 'p', path: 'x', config: { nested: ['env.UP_KEY'] } }] },
      { baseDir: ROOT, env: { UP_URL: 'http://127.0.0.1:9/v1', UP_KEY: 'sk-test' } },
    );
    const up = cfg.providers.up;
    assert.equal(up.type === 'openai' && up.api_key, 'sk-test');
    assert.deepEqual(cfg.plugins[0].config, { nested: ['sk-test'] });
  });

  it('fails on a missing environment variable, naming it and where it is used', () => {
    const e = configError({ providers: { up: { type: 'openai', base_url: 'http://x/v1', api_key: 'env.NOT_SET_ANYWHERE' } } });
    assert.equal(e.code, ErrorCode.configEnvMissing);
    assert.match(e.message, /NOT_SET_ANYWHERE/);
    assert.match(e.message, /providers\.up\.api_key/);
  });

  it('an openai provider\'s models list: optional, each name once, no spaces', () => {
    const ok = parseConfig({ providers: { up: { type: 'openai', base_url: 'http://x/v1', models: ['gpt-4o', 'gpt-4o-mini'] } } }, { baseDir: ROOT });
    assert.deepEqual((ok.providers.up as { models: string[] }).models, ['gpt-4o', 'gpt-4o-mini']);
    const none = parseConfig({ providers: { up: { type: 'openai', base_url: 'http://x/v1' } } }, { baseDir: ROOT });
    assert.deepEqual((none.providers.up as { models: string[] }).models, []);
    assert.match(configError({ providers: { up: { type: 'openai', base_url: 'http://x/v1', models: ['a', 'a'] } } }).message, /providers\.up\.models.*once/);
    assert.match(configError({ providers: { up: { type: 'openai', base_url: 'http://x/v1', models: ['gpt 4'] } } }).message, /providers\.up\.models\[0\]: a model name has no spaces/);
  });
});

describe('command line', () => {
  it('exits non-zero with the JSON path for an invalid config', async () => {
    const r = await runCli(['--config', tempConfig({ server: { port: 'eighty' } })]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /config_invalid/);
    assert.match(r.stderr, /server\.port/);
  });

  it('exits non-zero for a config that is not JSON, or missing', async () => {
    const bad = await runCli(['--config', tempConfig('{ "plugins": [ }')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not valid JSON/);
    const missing = await runCli(['--config', '/nonexistent/config.json']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read config file/);
  });

  it('rejects unknown flags with usage', async () => {
    const r = await runCli(['--prot', '1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /usage: sandgate/);
  });

  it('stops start-up when a fail-closed plugin cannot load', async () => {
    const r = await runCli(['--config', tempConfig({ plugins: [{ name: 'gone', path: '/nonexistent/gone.wasm' }] }), '--port', '0']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /plugin_load_failed/);
    assert.match(r.stderr, /gone/);
  });

  it('serves on --host/--port and exits 0 on SIGTERM (cleanup itself: shutdown.test.ts)', async () => {
    const file = tempConfig({ plugins: [{ name: 'wat', path: fixture('set-header') }] });
    const child = spawn(process.execPath, [CLI, '--config', file, '--port', '0', '--host', '127.0.0.1'], { cwd: ROOT });
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        const m = /"url":"([^"]+)"/.exec(out);
        if (m) resolve(m[1]);
      });
      child.on('exit', () => reject(new Error(`exited early: ${out}`)));
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200);
    const code = await new Promise<number | null>((resolve) => {
      child.on('exit', resolve);
      child.kill('SIGTERM');
    });
    assert.equal(code, 0);
    assert.match(out, /gateway stopped/);
  });
});
