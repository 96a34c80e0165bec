// Builds the C plugins: every sample-plugins/<name>/plugin.c and
// test/plugins/<name>/plugin.c (with the C PDK, plugin-pdk/c) into
// <that folder>/build/<name>.wasm, skipping what is
// up to date. The built .wasm files are committed, so a machine with only
// Node runs them as they are: without clang (wasm32 target) and lld this says
// what it skipped and why, and does not fail.
//
// Freestanding (wasm32-unknown-unknown, -nostdlib), not wasi-libc: the kit
// needs no libc (its own bump allocator, memory.copy/fill from -mbulk-memory),
// so a plugin imports only sandgate:host/v1 and builds with clang + lld alone.
//
// Used by scripts/build-plugins.mjs; runs on its own as `node scripts/build-c.mjs [--force]`.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { delimiter, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const KIT = join(root, 'plugin-pdk/c');

/** clang flags, and why. */
export const C_FLAGS = [
  '--target=wasm32-unknown-unknown',
  '-O2',
  '-nostdlib',            // freestanding: the kit brings what it needs
  '-mbulk-memory',        // memcpy/memset become memory.copy/fill, not calls to a libc that is not there
  '-std=c11', '-Wall', '-Wextra', '-Werror',
  '-fuse-ld=lld',
  '-Wl,--no-entry',       // a reactor: no main, the host calls the exports (ABI.md §7.3)
  '-Wl,--stack-first',    // the stack below the data: an overflow traps instead of overwriting globals
  '-Wl,-z,stack-size=262144', // 256 KiB: the kit's decoder recurses once per nesting level (at most 256)
  '-Wl,--strip-all',
  `-I${relative(root, join(KIT, 'include'))}`,
];

/**
 * PATH without any folder holding a `wasm-opt`: clang runs the first wasm-opt
 * it finds after linking (under npm that is binaryen's, from AssemblyScript,
 * in node_modules/.bin), without --enable-bulk-memory, which then refuses
 * the module. The kit's output needs no second optimiser.
 */
function pathWithoutWasmOpt() {
  const dirs = (process.env.PATH ?? '').split(delimiter);
  return dirs.filter((d) => d && !existsSync(join(d, 'wasm-opt'))).join(delimiter);
}

/** A clang that targets wasm32 and links with lld, or undefined (the reason in `why`). */
export function findWasmClang() {
  for (const cc of ['clang', 'clang-19', 'clang-18', 'clang-17', 'clang-16', 'clang-15', 'clang-14']) {
    const probe = spawnSync(cc, ['--print-targets'], { encoding: 'utf8' });
    if (probe.status !== 0) continue;
    if (!/wasm32/.test(probe.stdout)) continue;
    // by absolute path: the build runs with a PATH that may no longer hold it (pathWithoutWasmOpt)
    const dir = (process.env.PATH ?? '').split(delimiter).find((d) => d && existsSync(join(d, cc)));
    return { cc: dir ? join(dir, cc) : cc };
  }
  return { why: 'no clang with the wasm32 target on PATH (Debian: apt-get install clang lld)' };
}

function listC(dir) {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.c')).map((f) => join(dir, f)) : [];
}

/** The C plugins of the repo: one per <plugins folder>/<name>/plugin.c. */
export function cJobs() {
  const jobs = [];
  const kitInputs = [...listC(join(KIT, 'src')), join(KIT, 'include/sandgate.h'), fileURLToPath(import.meta.url)];
  for (const dir of [join(root, 'sample-plugins'), join(root, 'test/plugins')]) {
    for (const name of existsSync(dir) ? readdirSync(dir).sort() : []) {
      const entry = join(dir, name, 'plugin.c');
      if (!existsSync(entry)) continue;
      jobs.push({ name, entry, output: join(dir, name, 'build', `${name}.wasm`), inputs: [entry, ...kitInputs] });
    }
  }
  return jobs;
}

function upToDate(job, force) {
  if (force || !existsSync(job.output)) return false;
  const built = statSync(job.output).mtimeMs;
  return job.inputs.every((f) => statSync(f).mtimeMs <= built);
}

/**
 * Builds what is out of date. Returns { built, skipped, reason? }; throws with
 * the compiler's message when a build fails.
 */
export function buildC({ force = false, log = console.log } = {}) {
  const jobs = cJobs().filter((j) => !upToDate(j, force));
  if (jobs.length === 0) return { built: 0, skipped: 0 };
  const clang = findWasmClang();
  if (!clang.cc) {
    log(`build-c: skipped ${jobs.length} C plugin(s) (${jobs.map((j) => j.name).join(', ')}): ${clang.why}; the committed .wasm files are used`);
    return { built: 0, skipped: jobs.length, reason: clang.why };
  }
  for (const job of jobs) {
    const started = performance.now();
    mkdirSync(dirname(job.output), { recursive: true });
    const tmp = `${job.output}.${process.pid}.tmp`;
    const args = [...C_FLAGS, '-o', relative(root, tmp), relative(root, job.entry), ...listC(join(KIT, 'src')).map((f) => relative(root, f))];
    const run = spawnSync(clang.cc, args, { cwd: root, encoding: 'utf8', env: { ...process.env, PATH: pathWithoutWasmOpt() } });
    if (run.status !== 0) {
      throw new Error(`${clang.cc} ${args.join(' ')}\n${run.stderr || run.error?.message || `exit ${run.status}`}`);
    }
    renameSync(tmp, job.output); // atomic: a gateway loading it never sees half a module
    log(`built ${relative(root, job.output)} (${(statSync(job.output).size / 1024).toFixed(1)} KB, ${Math.round(performance.now() - started)} ms, ${clang.cc})`);
  }
  return { built: jobs.length, skipped: 0 };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    buildC({ force: process.argv.includes('--force') });
  } catch (err) {
    console.error(`build-c: FAILED\n${err.message}`);
    process.exit(1);
  }
}
