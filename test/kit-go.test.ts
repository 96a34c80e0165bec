import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

describe("Go kit README: its first plugin, followed literally", () => {
  let dir: string;
  let gw: TestGateway;
  before(async () => {
    const readme = readFileSync(path.join(ROOT, 'plugin-pdk/go/README.md'), 'utf8');
    const block = (start: string) => {
      const m = new RegExp('```[a-z]*\\n(' + start.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&') + '[\\s\\S]*?)```').exec(readme);
      assert.ok(m, `the README has a block starting ${start}`);
      return m[1];
    };
    dir = mkdtempSync(path.join(tmpdir(), 'kit-go-readme-'));
    // go.mod as written, its replace pointed at the kit from here instead of from sample-plugins/my-plugin.
    const gomod = block('// go.mod').replace('../../plugin-pdk/go', path.join(ROOT, 'plugin-pdk/go'));
    writeFileSync(path.join(dir, 'go.mod'), gomod.replace('// go.mod\n', ''));
    writeFileSync(path.join(dir, 'main.go'), block('// sample-plugins/my-plugin/main.go'));
    mkdirSync(path.join(dir, 'build'));
    const build = block('cd sample-plugins/my-plugin').split('\n')[1]; // the build command line
    assert.match(build, /^GOOS=wasip1 GOARCH=wasm go build /);
    const args = build.replace(/^GOOS=wasip1 GOARCH=wasm go /, '').split(' ');
    const r = spawnSync('go', args, {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin`, GOOS: 'wasip1', GOARCH: 'wasm' },
    });
    assert.equal(r.status, 0, `the README's build command failed: ${r.error?.message ?? r.stderr}`);
    gw = await startTestGateway({
      providers: { mock: { type: 'mock' } },
      plugins: [{ name: 'my-plugin', path: path.join(dir, 'build/my-plugin.wasm'), on_error: 'fail-closed' }],
    });
  });
  after(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers as its "Try it" says: 401 without Authorization, 200 with it', async () => {
    const chat = { model: 'mock/echo', messages: [{ role: 'user', content: 'hi' }] };
    const denied = await gw.post('/v1/chat/completions', chat);
    assert.equal(denied.status, 401, denied.text);
    assert.equal(denied.json.error.code, 'unauthorized');
    const ok = await gw.post('/v1/chat/completions', chat, { Authorization: 'x' });
    assert.equal(ok.status, 200, ok.text);
  });
});
