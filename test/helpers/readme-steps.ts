import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestGateway } from './gateway.js';
import { ROOT } from './paths.js';

// Follows a README's "first plugin" literally. The README marks each step with
// an HTML comment right before its fenced block, `<!-- first-plugin: source -->`
// (invisible on GitHub), so a test finds the block the reader sees, whatever
// the headings around it say. Steps:
//   file    a file to write; its first line is a comment naming its path
//   source  the plugin source (same form as `file`)
//   build   shell commands, run with bash in a fresh folder laid out like the repository
//   config  the config.json snippet (its `plugins`, paths as written)
//   try     `curl` commands, each followed by `# ...` lines: the answer the README promises

/**
 * The fenced block right after `<!-- first-plugin: <step> -->` in a Markdown file.
 * @example stepBlock('plugin-pdk/rust/README.md', 'build') // 'cd sample-plugins/my-plugin\ncargo build ...'
 */
export function stepBlock(readme: string, step: string, nth = 0): string {
  const found = stepBlocks(readme, step);
  assert.ok(found[nth] !== undefined, `${readme} has a fenced block after <!-- first-plugin: ${step} --> (#${nth + 1})`);
  return found[nth];
}

/** Every block of a step, in order (a README may have several `file` steps). */
export function stepBlocks(readme: string, step: string): string[] {
  const text = readFileSync(path.join(ROOT, readme), 'utf8');
  return [...text.matchAll(new RegExp(`<!-- first-plugin: ${step} -->\\s*\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1]);
}

/**
 * A fresh folder laid out like a clone of the repository: the kits and
 * node_modules are links to the real ones, everything else starts empty, so
 * relative paths written in a README (`../../plugin-pdk/go`, `npx asc`) work as written.
 */
export function freshClone(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `${prefix}-`));
  for (const shared of ['plugin-pdk', 'node_modules', 'package.json', 'scripts']) symlinkSync(path.join(ROOT, shared), path.join(dir, shared));
  return dir;
}

/** Writes a `file`/`source` block where its first-line comment (`// a/b.go`, `# a/Cargo.toml`, `/* a/b.c *\/`) says. */
export function writeFileBlock(clone: string, block: string): string {
  const first = block.split('\n')[0];
  const m = /^(?:\/\/|#|\/\*)\s*(\S+?)\s*(?:\*\/)?$/.exec(first);
  assert.ok(m, `the block's first line names its file as a comment: ${first}`);
  const file = path.join(clone, m[1]);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, block);
  return file;
}

/** Runs a `build` block with bash in `clone`, as a reader would paste it; fails with the shell's output. */
export function runShellBlock(clone: string, block: string, env: Record<string, string> = {}): void {
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', block], {
    cwd: clone,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 300_000,
  });
  assert.equal(r.status, 0, `the README's commands failed:\n${block}\n${r.error?.message ?? ''}${r.stdout}${r.stderr}`.slice(-4000));
}

/** The `plugins` of a `config` block, each `path` resolved against the clone (the gateway's working directory). */
export function configPlugins(clone: string, block: string): Record<string, unknown>[] {
  const parsed = JSON.parse(block) as { plugins?: Record<string, unknown>[] };
  assert.ok(Array.isArray(parsed.plugins) && parsed.plugins.length > 0, `the config snippet has plugins: ${block}`);
  return parsed.plugins.map((p) => ({ ...p, path: path.resolve(clone, String(p.path)) }));
}

interface CurlStep {
  command: string;
  headers: Record<string, string>;
  body: string;
  path: string;
  expect: string[];
}

/** The curl commands of a `try` block, each with the `# ...` answer lines that follow it. */
export function curlSteps(block: string): CurlStep[] {
  const lines = block.replace(/\\\n\s*/g, '').split('\n');
  const steps: CurlStep[] = [];
  for (const line of lines) {
    const comment = /^#\s?(.*)$/.exec(line.trim());
    if (comment && steps.length) steps[steps.length - 1].expect.push(comment[1]);
    if (!/^curl /.test(line.trim())) continue;
    const headers: Record<string, string> = {};
    for (const h of line.matchAll(/-H '([^:']+):\s*([^']*)'/g)) headers[h[1]] = h[2];
    const body = /-d '([^']*)'/.exec(line)?.[1] ?? '';
    const url = /(?:https?:\/\/)?(?:localhost|127\.0\.0\.1):8080(\/\S*)/.exec(line);
    assert.ok(url, `a curl to localhost:8080: ${line}`);
    steps.push({ command: line.trim(), headers, body, path: url[1], expect: [] });
  }
  assert.ok(steps.length > 0, `the try block has curl commands:\n${block}`);
  return steps;
}

/**
 * Sends each curl of a `try` block to the gateway and checks what its `# ...`
 * lines promise: `HTTP/1.1 <status>`, every `"key":"value"` pair in the body,
 * `header: value` lines in the headers, `log shows "<msg>"` in the gateway log.
 */
export async function checkTryIt(gw: TestGateway, block: string): Promise<void> {
  for (const step of curlSteps(block)) {
    const r = await gw.post(step.path, step.body, step.headers);
    const promised = step.expect.join('\n');
    const where = `${step.command}\n# README: ${promised}\n# got ${r.status}: ${r.text}`;
    const status = /HTTP\/1\.1 (\d{3})/.exec(promised);
    assert.ok(status || /"\w+":/.test(promised), `the README says what this curl answers: ${where}`);
    if (status) assert.equal(r.status, Number(status[1]), where);
    for (const pair of promised.matchAll(/"(\w+)":"([^"]*)"/g)) assert.ok(r.text.includes(pair[0]), `body has ${pair[0]}: ${where}`);
    for (const h of promised.matchAll(/^([a-z][a-z0-9-]*): (.+)$/gm)) assert.equal(r.headers.get(h[1]), h[2], `header ${h[1]}: ${where}`);
    for (const said of promised.matchAll(/log shows "([^"]+)"/g)) {
      assert.ok(gw.logs.some((l) => l.msg === said[1]), `log has "${said[1]}": ${where}`);
    }
  }
}
