// Builds the Rust sample plugins: every sample-plugins/<name>/Cargo.toml ->
// sample-plugins/<name>/build/<name>.wasm (committed, so a machine with only
// Node runs them). Called by build-plugins.mjs; also runs on its own:
//
//   node scripts/build-rust.mjs [--force]
//
// Needs a Rust toolchain with the wasm32-unknown-unknown target. Debian's
// (apt-get install rustc cargo libstd-rust-dev-wasm32, rustc 1.63) is
// preferred when present: rustup's toolchains often lack the target. Without
// one, each sample is skipped with the reason, and its committed .wasm stays.

import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const KIT_DIR = join(root, 'plugin-pdk/rust');
const TARGET = 'wasm32-unknown-unknown';

function listFiles(dir, ext) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? (e.name === 'target' ? [] : listFiles(join(dir, e.name), ext)) : e.name.endsWith(ext) ? [join(dir, e.name)] : [],
  );
}

/** A cargo/rustc pair whose rustc has the wasm32 standard library, or the reason there is none. */
export function findToolchain() {
  const candidates = [
    { cargo: '/usr/bin/cargo', rustc: '/usr/bin/rustc' }, // Debian's, with libstd-rust-dev-wasm32
    { cargo: 'cargo', rustc: 'rustc' }, // whatever is on PATH (rustup)
  ];
  for (const c of candidates) {
    try {
      const libdir = execFileSync(c.rustc, ['--print', 'target-libdir', '--target', TARGET], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (existsSync(libdir) && readdirSync(libdir).some((f) => f.startsWith('libstd'))) {
        execFileSync(c.cargo, ['--version'], { stdio: 'ignore' });
        return { toolchain: c };
      }
    } catch {
      // not installed, or no such target
    }
  }
  return { reason: `no Rust toolchain with the ${TARGET} target (Debian: apt-get install rustc cargo libstd-rust-dev-wasm32; rustup: rustup target add ${TARGET})` };
}

/** Builds the cdylib crate in `dir` for wasm32 into `output` (atomically). Throws with cargo's message. */
export function buildCrate(toolchain, dir, output) {
  const crate = /^\s*name\s*=\s*"([^"]+)"/m.exec(readFileSync(join(dir, 'Cargo.toml'), 'utf8'))[1].replace(/-/g, '_');
  const targetDir = join(dir, 'target');
  const res = spawnSync(toolchain.cargo, ['build', '--release', '--offline', '--target', TARGET], {
    cwd: dir,
    encoding: 'utf8',
    env: {
      ...process.env,
      RUSTC: toolchain.rustc,
      CARGO_TARGET_DIR: targetDir,
      CARGO_HOME: process.env.CARGO_HOME ?? join(targetDir, 'cargo-home'),
      // The same bytes whatever the checkout's path (panic messages name source files).
      RUSTFLAGS: `--remap-path-prefix=${root}=sandgate`,
    },
  });
  if (res.status !== 0) throw new Error(`cargo build in ${relative(root, dir)} failed:\n${res.stderr}`);
  mkdirSync(dirname(output), { recursive: true });
  const tmp = `${output}.${process.pid}.tmp`;
  copyFileSync(join(targetDir, TARGET, 'release', `${crate}.wasm`), tmp);
  renameSync(tmp, output); // a gateway loading it concurrently never sees half a module
}

/** sha256 over the inputs' paths (relative to the repository) and contents, in a stable order. */
function inputsDigest(files) {
  const h = createHash('sha256');
  for (const f of [...files].sort()) h.update(relative(root, f)).update('\0').update(readFileSync(f)).update('\0');
  return h.digest('hex');
}

/** Returns one line per sample: built, up to date, or skipped and why. Throws with cargo's message on failure. */
export function buildRustSamples({ force = false } = {}) {
  const samplesDir = join(root, 'sample-plugins');
  const samples = readdirSync(samplesDir).sort().filter((n) => existsSync(join(samplesDir, n, 'Cargo.toml')));
  const kitSources = [...listFiles(join(KIT_DIR, 'src'), '.rs'), join(KIT_DIR, 'Cargo.toml'), fileURLToPath(import.meta.url)];
  const lines = [];
  let found;
  for (const name of samples) {
    const dir = join(samplesDir, name);
    const output = join(dir, 'build', `${name}.wasm`);
    const inputs = [...listFiles(join(dir, 'src'), '.rs'), join(dir, 'Cargo.toml'), ...kitSources];
    // Up to date when the committed stamp names these exact inputs: a fresh clone's file times say nothing,
    // and rustc's output depends on the checkout's path (path dependencies' metadata hashes), so a needless
    // rebuild would leave a modified .wasm behind.
    const stamp = `${output}.inputs-sha256`;
    const digest = inputsDigest(inputs);
    if (!force && existsSync(output) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === digest) continue;
    found ??= findToolchain();
    if (!found.toolchain) {
      lines.push(`skipped ${relative(root, dir)}: ${found.reason}; ${existsSync(output) ? `keeping the committed ${relative(root, output)}` : 'it has no build yet'}`);
      continue;
    }
    const started = performance.now();
    buildCrate(found.toolchain, dir, output);
    writeFileSync(stamp, `${digest}\n`);
    lines.push(`built ${relative(root, output)} (${(statSync(output).size / 1024).toFixed(1)} KB, ${Math.round(performance.now() - started)} ms)`);
  }
  return lines;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    for (const line of buildRustSamples({ force: process.argv.includes('--force') })) console.log(line);
  } catch (err) {
    console.error(`build-rust: FAILED ${err.message}`);
    process.exit(1);
  }
}
