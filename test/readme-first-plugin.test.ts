import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { ROOT } from './helpers/paths.js';
import { checkTryIt, configPlugins, freshClone, runShellBlock, stepBlock, stepBlocks, writeFileBlock } from './helpers/readme-steps.js';

// "A first plugin in each language", followed literally: for each kit's README,
// the files and the plugin source are written where their first-line comment
// says, in a fresh folder laid out like a clone; the README's build block runs
// there with bash; the gateway starts with its config snippet; and each curl of
// its "Try it" gets the answer the README prints under it. The blocks are
// found by their `<!-- first-plugin: <step> -->` markers (test/helpers/readme-steps.ts).

// build-rust.mjs is plain JS outside the TypeScript project: loaded at run time.
const { findToolchain } = (await import(path.join(ROOT, 'scripts/build-rust.mjs'))) as {
  findToolchain(): { toolchain?: { cargo: string; rustc: string }; reason?: string };
};

/**
 * The PATH of a reader's shell: without node_modules/.bin (npm test adds it;
 * its binaryen wasm-opt would be picked up by clang), plus the given toolchain folders.
 */
function readerPath(...toolchains: string[]): string {
  const own = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d && !d.includes('node_modules'));
  return [...toolchains, ...own].join(path.delimiter);
}

interface Kit {
  readme: string;
  /** The environment of a reader who did the README's "Install" step; a string says why it cannot run here. */
  env(): Record<string, string> | string;
  /** Whether a missing toolchain fails (CI installs it) rather than skips. */
  required: boolean;
}

const KITS: Kit[] = [
  { readme: 'plugin-pdk/assemblyscript/README.md', env: () => ({ PATH: readerPath() }), required: true },
  { readme: 'plugin-pdk/go/README.md', env: () => ({ PATH: readerPath('/usr/local/go/bin') }), required: true },
  {
    readme: 'plugin-pdk/rust/README.md',
    env: () => {
      const found = findToolchain();
      if (!found.toolchain) return found.reason ?? 'no Rust toolchain';
      const { cargo, rustc } = found.toolchain;
      // The README's own advice when rustup's rustc (no wasm32 std) comes first on PATH.
      return { PATH: readerPath(...[cargo, rustc].filter((p) => p.includes('/')).map((p) => path.dirname(p))), RUSTC: rustc };
    },
    required: process.env.SANDGATE_REQUIRE_RUST === '1',
  },
  {
    readme: 'plugin-pdk/c/README.md',
    env: () => {
      // Debian's clang-14 packages put `clang` in /usr/lib/llvm-14/bin (the `clang` package adds the /usr/bin link).
      const PATH = readerPath(...(existsSync('/usr/lib/llvm-14/bin/clang') ? ['/usr/lib/llvm-14/bin'] : []));
      const probe = spawnSync('clang', ['--print-targets'], { encoding: 'utf8', env: { ...process.env, PATH } });
      if (probe.status !== 0 || !/wasm32/.test(probe.stdout)) return 'no clang with the wasm32 target (Debian: apt-get install clang lld); .ci/run installs it';
      return { PATH };
    },
    // As test/kit-c.test.ts: skipped, saying why, on a machine without clang.
    required: false,
  },
];

for (const kit of KITS) {
  describe(`${kit.readme}: the first plugin, followed literally`, () => {
    let clone: string;
    let gw: TestGateway | undefined;
    let why: string | undefined;
    before(async () => {
      const env = kit.env();
      if (typeof env === 'string') {
        if (kit.required) assert.fail(env);
        why = env;
        return;
      }
      clone = freshClone('first-plugin');
      for (const file of stepBlocks(kit.readme, 'file')) writeFileBlock(clone, file);
      writeFileBlock(clone, stepBlock(kit.readme, 'source'));
      runShellBlock(clone, stepBlock(kit.readme, 'build'), env);
      const config = JSON.parse(stepBlock(kit.readme, 'config')) as Record<string, unknown>;
      gw = await startTestGateway({ ...config, plugins: configPlugins(clone, stepBlock(kit.readme, 'config')) });
    });
    after(async () => {
      await gw?.close();
      if (clone) rmSync(clone, { recursive: true, force: true });
    });

    it('its config loads the plugin it built, and each curl of "Try it" gets the answer the README shows', async (t) => {
      if (why) return t.skip(why);
      assert.ok(gw);
      await checkTryIt(gw, stepBlock(kit.readme, 'try'));
    });
  });
}
