import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCode } from '../host/errors/codes.js';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { ROOT } from './helpers/paths.js';

// The Rust PDK (plugin-pdk/rust): its own suite, natively (`cargo test`: every
// conformance vector decoded and re-encoded, the hook runners reproducing the
// output vectors), then the kit compiled to wasm32 through the real gateway.
// .ci/run installs Rust and sets SANDGATE_REQUIRE_RUST=1, so a missing toolchain
// fails CI instead of skipping; on a machine without Rust these tests skip and say why.

const KIT = path.join(ROOT, 'plugin-pdk/rust');
const REQUIRED = process.env.SANDGATE_REQUIRE_RUST === '1';

// build-rust.mjs is plain JS outside the TypeScript project: loaded at run time.
const buildRust = (await import(path.join(ROOT, 'scripts/build-rust.mjs'))) as {
  findToolchain(): { toolchain?: { cargo: string; rustc: string }; reason?: string };
  buildCrate(toolchain: { cargo: string; rustc: string }, dir: string, output: string): void;
};

function cargoOnPath(): string | undefined {
  const r = spawnSync('cargo', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function skipOrFail(t: { skip(msg: string): void }, why: string): void {
  if (REQUIRED) assert.fail(`${why} (SANDGATE_REQUIRE_RUST=1)`);
  t.skip(why);
}

describe('Rust PDK native suite (cargo test)', () => {
  it('passes, with every conformance vector decoded and re-encoded', (t) => {
    const version = cargoOnPath();
    if (!version) return skipOrFail(t, 'cargo is not on PATH: install Rust (README, Tests) to run the Rust PDK suite');
    const r = spawnSync('cargo', ['test', '--offline', '--color', 'never'], {
      cwd: KIT,
      encoding: 'utf8',
      env: { ...process.env, CARGO_TARGET_DIR: path.join(KIT, 'target') },
      timeout: 300_000,
    });
    const out = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.status, 0, `cargo test failed (${version}):\n${out.slice(-4000)}`);
    const passed = [...out.matchAll(/test result: ok\. (\d+) passed/g)].reduce((n, m) => n + Number(m[1]), 0);
    assert.ok(passed >= 25, `expected the kit's whole suite to run, saw ${passed} passing tests:\n${out.slice(-2000)}`);
    assert.match(out, /every_vector_decodes_to_its_value_and_reencodes \.\.\. ok/);
    assert.match(out, /typed_response_reencodes_every_integer_encoding_canonically \.\.\. ok/);
  });
});

describe('Rust PDK in wasm32 through the gateway', () => {
  let gw: TestGateway | undefined;
  let why: string | undefined;
  before(async () => {
    const found = buildRust.findToolchain();
    if (!found.toolchain) {
      why = found.reason;
      return;
    }
    const wasm = path.join(KIT, 'build/kit-test-plugin.wasm');
    buildRust.buildCrate(found.toolchain, path.join(KIT, 'test-plugin'), wasm);
    gw = await startTestGateway({
      runtime: { workers: 1 },
      plugins: [{ name: 'rust-kit', path: wasm, on_error: 'fail-closed', circuit_breaker: { failure_threshold: 0 } }],
    });
  });
  after(() => gw?.close());

  it('edits the request and the response', async (t) => {
    if (!gw) return skipOrFail(t, `cannot build the kit's wasm test plugin: ${why}`);
    const r = await gw.post('/v1/chat/completions', CHAT('héllo'));
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, 'HÉLLO [SEEN BY RUST, ATTEMPT 0]');
  });

  it('a panic fails the call as plugin_trap, and its message reaches the log', async (t) => {
    if (!gw) return skipOrFail(t, `cannot build the kit's wasm test plugin: ${why}`);
    const rid = 'rust-panic';
    const r = await gw.post('/v1/chat/completions', CHAT('panic'), { 'x-request-id': rid });
    assert.equal(r.status, 500);
    assert.equal(r.json.error.code, ErrorCode.pluginTrap);
    const said = gw.logs.filter((l) => l.rid === rid && l.plugin === 'rust-kit' && l.level === 50).map((l) => l.msg);
    assert.ok(said.some((m) => /panicked at .*kit test plugin panicked on purpose \(model echo\)/.test(m)), said.join(' | '));
    // The instance was replaced: the next call works.
    const again = await gw.post('/v1/chat/completions', CHAT('ok'));
    assert.equal(again.status, 200);
  });
});
