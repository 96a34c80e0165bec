#!/usr/bin/env node
// Builds every plugin the repo contains, skipping what is already up to date:
//
//   sample-plugins/<name>/assembly/index.ts      -> sample-plugins/<name>/build/<name>.wasm   (asc)
//   test/plugins/<name>/assembly/index.ts         -> test/plugins/<name>/build/<name>.wasm     (asc, integration-test plugins)
//   plugin-pdk/assemblyscript/test/<name>.ts      -> plugin-pdk/assemblyscript/build/<name>.wasm (conformance, features)
//   test/fixtures/*.wat                           -> test/fixtures/build/<name>.wasm          (wabt, pure JS)
//   sample-plugins/<name>/go.mod                  -> sample-plugins/<name>/build/<name>.wasm   (Go, scripts/build-go.mjs)
//
// Usage: node scripts/build-plugins.mjs [--force]
// Prints one line per artifact built; exits 1 with the compiler's message on failure.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');
const PDK_DIR = 'plugin-pdk/assemblyscript/assembly';

// asc flags, and why:
// --optimize         -O3 (speed), shrink level 0: hooks run per request.
// --runtime minimal  TLSF + mark & sweep run by the PDK at the end of each hook:
//                    no shadow stack (incremental's per-call cost), and unlike
//                    stub it frees what a call allocated.
// --use abort=...    Extism's `env` module is empty; the PDK's abort logs and traps.
//                    The path is the file's internal name relative to --baseDir.
const ASC_FLAGS = [
  '--optimize',
  '--runtime', 'minimal',
  '--use', `abort=${PDK_DIR}/abort/sandgateAbort`,
];

// Post-MVP features a hand-written fixture may use.
const WAT_FEATURES = {
  mutable_globals: true, sat_float_to_int: true, sign_extension: true, multi_value: true,
  bulk_memory: true, reference_types: true,
};

const abs = (p) => join(root, p);
const rel = (p) => relative(root, p);

function listFiles(dir, ext) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(p, ext));
    else if (entry.name.endsWith(ext)) out.push(p);
  }
  return out;
}

function upToDate(output, inputs) {
  if (force || !existsSync(output)) return false;
  const built = statSync(output).mtimeMs;
  return inputs.every((f) => statSync(f).mtimeMs <= built);
}

// Write next to the target and rename: a test or gateway loading the file
// concurrently never sees half a module.
function writeAtomic(file, bytes) {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, file);
}

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

// ---- jobs

const thisScript = fileURLToPath(import.meta.url);
const pdkSources = listFiles(abs(PDK_DIR), '.ts');
const jobs = [];

// One plugin per folder with an assembly/index.ts: sample plugins, and the integration tests' own plugins.
for (const pluginsDir of [abs('sample-plugins'), abs('test/plugins')]) {
  if (!existsSync(pluginsDir)) continue;
  for (const name of readdirSync(pluginsDir).sort()) {
    const entry = join(pluginsDir, name, 'assembly', 'index.ts');
    if (!existsSync(entry)) continue;
    jobs.push({
      kind: 'asc', entry,
      output: join(pluginsDir, name, 'build', `${name}.wasm`),
      inputs: [...listFiles(join(pluginsDir, name, 'assembly'), '.ts'), ...pdkSources, thisScript],
    });
  }
}

// The PDK's own test plugins (conformance.ts, features.ts).
const pdkTestDir = abs('plugin-pdk/assemblyscript/test');
if (existsSync(pdkTestDir)) {
  for (const f of readdirSync(pdkTestDir).sort()) {
    if (!f.endsWith('.ts') || f.endsWith('.d.ts')) continue;
    const entry = join(pdkTestDir, f);
    jobs.push({
      kind: 'asc', entry,
      output: abs(`plugin-pdk/assemblyscript/build/${f.replace(/\.ts$/, '.wasm')}`),
      inputs: [entry, ...pdkSources, thisScript],
    });
  }
}

const fixturesDir = abs('test/fixtures');
if (existsSync(fixturesDir)) {
  for (const f of readdirSync(fixturesDir).sort()) {
    if (!f.endsWith('.wat')) continue;
    const entry = join(fixturesDir, f);
    jobs.push({
      kind: 'wat', entry,
      output: join(fixturesDir, 'build', f.replace(/\.wat$/, '.wasm')),
      inputs: [entry, thisScript],
    });
  }
}

// ---- builders (loaded only when something needs building: keeps `npm start` fast)

let asc;
async function buildAsc(job) {
  asc ??= (await import('assemblyscript/asc')).default;
  let binary = null;
  const stderr = asc.createMemoryStream();
  const stdout = asc.createMemoryStream();
  const { error } = await asc.main(
    [rel(job.entry), '--baseDir', root, '--outFile', rel(job.output), ...ASC_FLAGS],
    {
      stdout, stderr,
      writeFile(name, contents) {
        if (name.endsWith('.wasm')) binary = contents;
      },
    },
  );
  if (error || !binary) {
    throw new Error(`${stderr.toString()}${error ? error.message : 'asc produced no binary'}`);
  }
  return binary;
}

let wabt;
async function buildWat(job) {
  wabt ??= await (await import('wabt')).default();
  let mod;
  try {
    mod = wabt.parseWat(rel(job.entry), readFileSync(job.entry, 'utf8'), WAT_FEATURES);
    mod.resolveNames();
    mod.validate();
    return mod.toBinary({ log: false, write_debug_names: true }).buffer;
  } finally {
    mod?.destroy();
  }
}

let built = 0;
for (const job of jobs) {
  if (upToDate(job.output, job.inputs)) continue;
  const started = performance.now();
  let bytes;
  try {
    bytes = job.kind === 'asc' ? await buildAsc(job) : await buildWat(job);
  } catch (err) {
    console.error(`build-plugins: FAILED ${rel(job.entry)}\n${err.message ?? err}`);
    process.exit(1);
  }
  writeAtomic(job.output, bytes);
  built++;
  console.log(`built ${rel(job.output)} (${kb(bytes.length)}, ${Math.round(performance.now() - started)} ms)`);
}
if (built === 0) console.log(`build-plugins: ${jobs.length} artifact(s) up to date`);

// ---- Rust samples (sample-plugins/<name>/Cargo.toml): scripts/build-rust.mjs builds them when a
// Rust toolchain with the wasm32 target is present, and otherwise says which it skipped and why.
try {
  const { buildRustSamples } = await import('./build-rust.mjs');
  for (const line of buildRustSamples({ force })) console.log(line);
} catch (err) {
  console.error(`build-plugins: FAILED ${err.message ?? err}`);
  process.exit(1);
}

// ---- C plugins (sample-plugins/<name>/plugin.c): scripts/build-c.mjs, which skips them, saying why, without clang
{
  const { buildC } = await import('./build-c.mjs');
  try {
    buildC({ force });
  } catch (err) {
    console.error(`build-plugins: FAILED (C)\n${err.message ?? err}`);
    process.exit(1);
  }
}

// ---- Go samples (scripts/build-go.mjs): built when Go 1.24+ is present, else skipped with why
{
  const { buildGoSamples } = await import('./build-go.mjs');
  let go;
  try {
    go = buildGoSamples({ root, force, inputs: [thisScript, join(root, 'scripts/build-go.mjs')] });
  } catch (err) {
    console.error(`build-plugins: FAILED ${err.message}`);
    process.exit(1);
  }
  for (const line of go.built) console.log(`built ${line}`);
  for (const line of go.skipped) console.log(`build-plugins: skipped ${line}`);
}
