import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ErrorCode } from '../host/errors/codes.js';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { ROOT } from './helpers/paths.js';

// The Go kit's own suite (plugin-pdk/go, `go test`, natively): it decodes and
// re-encodes every vector of plugin-pdk/conformance/vectors.json, so a drift
// between the Go kit and the shared vectors fails `npm test`.

function goTest(dir: string): { status: number | null; out: string } {
  const r = spawnSync('go', ['test', '-count=1', '-v', './...'], {
    cwd: path.join(ROOT, dir),
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin` },
  });
  if (r.error) throw new Error(`running \`go test\` in ${dir} needs Go 1.24 or later on PATH (.ci/run installs it): ${r.error.message}`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('Go kit (plugin-pdk/go)', () => {
  it('go test passes: every conformance vector decodes and re-encodes, typed envelopes included', () => {
    const { status, out } = goTest('plugin-pdk/go');
    assert.equal(status, 0, out);
    const passed = out.match(/^\s*--- PASS: TestEveryVectorDecodesAndReencodes\//gm) ?? [];
    assert.ok(passed.length >= 22, `every vector ran as its own subtest (${passed.length}):\n${out}`);
    assert.doesNotMatch(out, /--- FAIL/);
  });

  it("the Go samples' own go test passes (hooks called natively through the kit)", () => {
    for (const dir of ['sample-plugins/hello-world-go']) {
      const { status, out } = goTest(dir);
      assert.equal(status, 0, out);
      assert.match(out, /--- PASS: TestPreHookSetsHeaderAndContext/);
    }
  });
});

describe('Go kit: a panic in a handler', () => {
  let dir: string;
  let gw: TestGateway;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'kit-go-panic-'));
    const out = path.join(dir, 'panic.wasm');
    const r = spawnSync('go', ['build', '-trimpath', '-buildmode=c-shared', '-o', out, '.'], {
      cwd: path.join(ROOT, 'plugin-pdk/go/testdata/panic'),
      encoding: 'utf8',
      env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin`, GOOS: 'wasip1', GOARCH: 'wasm' },
    });
    assert.equal(r.status, 0, `building plugin-pdk/go/testdata/panic needs Go 1.24+: ${r.error?.message ?? r.stderr}`);
    gw = await startTestGateway({ providers: { mock: { type: 'mock' } }, plugins: [{ name: 'panicky', path: out, circuit_breaker: { failure_threshold: 0 } }] });
  });
  after(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails that call as plugin_trap with the panic message in the log; the next call gets a fresh instance', async () => {
    const r = await gw.post('/v1/chat/completions', CHAT('panic: the config has no keys'), { 'x-request-id': 'kit-go-panic' });
    assert.equal(r.status, 500, r.text);
    assert.equal(r.json.error.code, ErrorCode.pluginTrap);
    const failure = gw.logs.find((l) => l.rid === 'kit-go-panic' && l.msg === 'plugin failure');
    assert.match(String(failure?.err), /stderr: panic: the config has no keys/);
    const next = await gw.post('/v1/chat/completions', CHAT('hello'));
    assert.equal(next.status, 200, next.text);
  });
});

// Its README's first plugin is followed literally by test/readme-first-plugin.test.ts, with the other kits'.
