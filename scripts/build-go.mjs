// Builds the Go sample plugins (called by scripts/build-plugins.mjs):
//
//   sample-plugins/<name>/go.mod + *.go   -> sample-plugins/<name>/build/<name>.wasm
//
// with  GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared
// (a reactor, ABI.md §7.3; -trimpath so a rebuild on another machine gives
// the same bytes with the same Go). The built modules are committed: without
// Go 1.24+ on PATH nothing is built and each sample is listed as skipped,
// with why, and the committed module is what runs.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const MIN_MINOR = 24; // //go:wasmexport came with Go 1.24

/** The go binary to use (env GO, else go on PATH, else /usr/local/go) and its version, or why there is none. */
function findGo() {
  for (const go of process.env.GO ? [process.env.GO] : ['go', '/usr/local/go/bin/go']) {
    try {
      const out = execFileSync(go, ['version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const m = /go1\.(\d+)/.exec(out);
      if (!m) continue;
      if (Number(m[1]) < MIN_MINOR) return { why: `${out.trim()} is older than Go 1.${MIN_MINOR} (needed for //go:wasmexport)` };
      return { go, version: out.trim() };
    } catch {
      // not there: try the next
    }
  }
  return { why: `Go 1.${MIN_MINOR} or later is not on PATH${process.env.GO ? ` (GO=${process.env.GO})` : ''}` };
}

const goFiles = (dir) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.go') || f === 'go.mod').map((f) => join(dir, f)) : []);

/**
 * Builds every Go sample that is out of date.
 * @param {{ root: string, force: boolean, inputs: string[] }} opts  inputs: files whose change rebuilds everything (the build scripts)
 * @returns {{ built: string[], skipped: string[], upToDate: number }}
 * @example const { built, skipped } = buildGoSamples({ root, force: false, inputs: [thisScript] });
 */
export function buildGoSamples({ root, force, inputs }) {
  const samplesDir = join(root, 'sample-plugins');
  const kitSources = goFiles(join(root, 'plugin-pdk/go')).filter((f) => !f.endsWith('_test.go'));
  const samples = existsSync(samplesDir)
    ? readdirSync(samplesDir).sort().filter((name) => existsSync(join(samplesDir, name, 'go.mod')))
    : [];
  const result = { built: [], skipped: [], upToDate: 0 };
  if (samples.length === 0) return result;

  const toolchain = findGo();
  for (const name of samples) {
    const dir = join(samplesDir, name);
    const output = join(dir, 'build', `${name}.wasm`);
    const sources = [...goFiles(dir).filter((f) => !f.endsWith('_test.go')), ...kitSources, ...inputs];
    if (!force && existsSync(output) && sources.every((f) => statSync(f).mtimeMs <= statSync(output).mtimeMs)) {
      result.upToDate++;
      continue;
    }
    if (!toolchain.go) {
      result.skipped.push(`${relative(root, dir)}: ${toolchain.why}; the committed ${relative(root, output)} is used`);
      continue;
    }
    const started = performance.now();
    try {
      execFileSync(toolchain.go, ['build', '-trimpath', '-buildmode=c-shared', '-o', join('build', `${name}.wasm`), '.'], {
        cwd: dir,
        env: { ...process.env, GOOS: 'wasip1', GOARCH: 'wasm' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    } catch (err) {
      throw new Error(`go build in ${relative(root, dir)} failed (${toolchain.version}):\n${err.stderr ?? err.message}`);
    }
    result.built.push(`${relative(root, output)} (${(statSync(output).size / 1024).toFixed(1)} KB, ${Math.round(performance.now() - started)} ms)`);
  }
  return result;
}

// `node scripts/build-go.mjs [--force]`: only the Go samples (what .ci/run uses to rebuild them).
if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  const { dirname } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const { built, skipped, upToDate } = buildGoSamples({ root, force: process.argv.includes('--force'), inputs: [] });
  for (const line of built) console.log(`built ${line}`);
  for (const line of skipped) console.log(`build-go: skipped ${line}`);
  if (built.length + skipped.length === 0) console.log(`build-go: ${upToDate} Go sample(s) up to date`);
}
