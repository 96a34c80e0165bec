#!/usr/bin/env node
// Runs the Dockerfile's steps without docker, for machines that have no docker
// daemon (this project's CI among them), then starts the image's CMD and stops it
// the way `docker stop` does.
//
//   node scripts/check-dockerfile.mjs [--file Dockerfile] [--keep]
//
// Each stage gets a folder of its own standing for its file system; the build
// context is a copy of the repository filtered by .dockerignore; COPY, WORKDIR,
// ENV and RUN are carried out in those folders with this machine's node and npm
// in place of the base image's (their major versions must match). Then the CMD
// (which must be exec form) runs in the last stage's WORKDIR with `--port 0`
// appended so it cannot clash with another gateway; the check sends it a chat
// request (200, processed by hello-world), then the STOPSIGNAL, and expects exit 0
// with the plugins' cleanup in the log.
//
// What it proves: the build steps work from a clean copy of the repository, the
// runtime stage copies everything the gateway needs, and the CMD starts it and
// stops it cleanly on the stop signal. What it does not: that the base image
// exists and behaves like this machine, USER (everything runs as the caller),
// EXPOSE, and node running as PID 1 (here it is a child of this script).
// Exits 1 with the reason on the first failure.

import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({ options: { file: { type: 'string', default: 'Dockerfile' }, keep: { type: 'boolean' } } });
const dockerfile = resolve(root, opts.file);
let work; // the temporary folder standing for the build context and each stage's file system

function fail(message) {
  console.error(`check-dockerfile: ${message}`);
  if (work && !opts.keep) rmSync(work, { recursive: true, force: true });
  process.exit(1);
}

/** Dockerfile text -> [{ op, args, line }], continuation lines joined, comments dropped. */
function parseDockerfile(text) {
  const out = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) return;
    if (!pending) startLine = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = pending + line;
    pending = '';
    const m = /^(\w+)\s+(.*)$/.exec(full);
    if (!m) fail(`${opts.file}:${startLine}: cannot read "${full}"`);
    out.push({ op: m[1].toUpperCase(), args: m[2].trim(), line: startLine });
  });
  return out;
}

/** .dockerignore -> predicate on a context-relative path (supports *, ** and plain names; no "!"). */
function ignoreMatcher(file) {
  if (!existsSync(file)) return () => false;
  const patterns = readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const bad = patterns.find((p) => p.startsWith('!') || /[?[\]]/.test(p));
  if (bad) fail(`.dockerignore: "${bad}" uses syntax this check does not support (only *, ** and names)`);
  const regexes = patterns.map((p) => {
    const body = p
      .replace(/^\/+|\/+$/g, '')
      .split('/')
      .map((seg) => (seg === '**' ? '.*' : seg.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*')))
      .join('/')
      .replace(/\.\*\//g, '(?:.*/)?');
    // A match on a folder excludes everything inside it, as docker does.
    return new RegExp(`^${body}(?:/.*)?$`);
  });
  return (rel) => regexes.some((r) => r.test(rel));
}

function run(cmd, args, cwd, env) {
  const r = spawnSync(cmd, args, { cwd, env, stdio: 'inherit' });
  if (r.status !== 0) fail(`\`${[cmd, ...args].join(' ')}\` failed (exit ${r.status ?? r.signal}) in ${cwd}`);
}

const steps = parseDockerfile(readFileSync(dockerfile, 'utf8'));
work = mkdtempSync(join(tmpdir(), 'sandgate-dockerfile-'));
const context = join(work, 'context');
const ignored = ignoreMatcher(join(root, '.dockerignore'));
cpSync(root, context, { recursive: true, filter: (src) => src === root || !ignored(relative(root, src).split('\\').join('/')) });

const stages = []; // { name, root, workdir, env }
let stage;
let cmd;
let stopSignal = 'SIGTERM';
const inStage = (s, p) => join(s.root, posix.resolve(s.workdir, p));

for (const { op, args, line } of steps) {
  const where = `${opts.file}:${line}`;
  if (op !== 'FROM' && !stage) fail(`${where}: ${op} before any FROM`);
  switch (op) {
    case 'FROM': {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      const image = m?.[1] ?? '';
      const major = /^node:(\d+)/.exec(image)?.[1];
      const hostMajor = process.versions.node.split('.')[0];
      if (major !== hostMajor) fail(`${where}: this check stands in node ${hostMajor} for the base image, which is "${image}" (want node:${hostMajor}...)`);
      stage = { name: m[2] ?? String(stages.length), root: join(work, `stage-${stages.length}`), workdir: '/', env: {} };
      mkdirSync(stage.root);
      stages.push(stage);
      console.log(`check-dockerfile: FROM ${image} (standing in: node ${process.versions.node}, npm from PATH)`);
      break;
    }
    case 'WORKDIR':
      stage.workdir = posix.resolve(stage.workdir, args);
      mkdirSync(inStage(stage, '.'), { recursive: true });
      break;
    case 'ENV': {
      const m = /^(\w+)=(.*)$/.exec(args);
      if (!m) fail(`${where}: write ENV as NAME=value`);
      stage.env[m[1]] = m[2];
      break;
    }
    case 'COPY': {
      const words = args.split(/\s+/);
      const from = words[0].startsWith('--from=') ? words.shift().slice('--from='.length) : undefined;
      if (words.some((w) => w.startsWith('--'))) fail(`${where}: COPY option not supported by this check: ${args}`);
      const dest = words.pop();
      const source = from === undefined ? null : stages.find((s) => s.name === from);
      if (from !== undefined && !source) fail(`${where}: no stage named "${from}"`);
      for (const src of words) {
        const srcPath = source ? join(source.root, posix.resolve('/', src)) : join(context, src);
        if (!existsSync(srcPath)) fail(`${where}: COPY source "${src}" does not exist${source ? ` in stage ${from}` : ' in the build context'}`);
        const destPath = inStage(stage, dest);
        const intoDir = statSync(srcPath).isDirectory() || dest.endsWith('/') || words.length > 1;
        const target = statSync(srcPath).isDirectory() ? destPath : intoDir ? join(destPath, basename(srcPath)) : destPath;
        mkdirSync(dirname(target), { recursive: true });
        cpSync(srcPath, target, { recursive: true });
      }
      break;
    }
    case 'RUN': {
      console.log(`check-dockerfile: RUN ${args}`);
      const env = { ...process.env, ...stage.env };
      if (args.startsWith('[')) {
        const [file, ...rest] = JSON.parse(args);
        run(file, rest, inStage(stage, '.'), env);
      } else run('sh', ['-c', args], inStage(stage, '.'), env);
      break;
    }
    case 'CMD':
      if (!args.startsWith('[')) fail(`${where}: CMD must be exec form (["node", ...]): a shell in between would not pass SIGTERM on`);
      cmd = JSON.parse(args);
      break;
    case 'STOPSIGNAL':
      stopSignal = args;
      if (!['SIGTERM', 'SIGINT'].includes(stopSignal)) fail(`${where}: the gateway drains on SIGTERM or SIGINT, not ${stopSignal}`);
      break;
    case 'USER':
    case 'EXPOSE':
    case 'LABEL':
      console.log(`check-dockerfile: ${op} ${args} (not checked)`);
      break;
    default:
      fail(`${where}: instruction ${op} not supported by this check`);
  }
}
if (!cmd) fail(`${opts.file}: no CMD`);

// Start the CMD as the container would, on a free port, and stop it as `docker stop` does.
const cwd = inStage(stage, '.');
console.log(`check-dockerfile: CMD ${JSON.stringify(cmd)} in ${stage.workdir} (+ --port 0)`);
const child = spawn(cmd[0], [...cmd.slice(1), '--port', '0'], { cwd, env: { ...process.env, ...stage.env } });
let log = '';
child.stdout.on('data', (d) => (log += d));
child.stderr.on('data', (d) => (log += d));
const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
const giveUp = setTimeout(() => {
  child.kill('SIGKILL');
  fail(`the gateway did not start and stop within 30 s:\n${log}`);
}, 30_000);

let port;
await new Promise((listening) => {
  child.stdout.on('data', () => {
    port ??= /"url":"http:\/\/[^"]*:(\d+)"/.exec(log)?.[1];
    if (port) listening();
  });
  void exited.then(({ code, signal }) => port || fail(`the CMD exited before listening (${code ?? signal}):\n${log}`));
});
const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'mock/echo', messages: [{ role: 'user', content: 'Hello!' }] }),
});
await res.text();
if (res.status !== 200 || res.headers.get('x-processed-by') !== 'hello-world') {
  fail(`chat request: ${res.status}, x-processed-by ${res.headers.get('x-processed-by')} (want 200 and hello-world)\n${log}`);
}
console.log(`check-dockerfile: the gateway answers on its port (200, processed by hello-world); sending ${stopSignal}`);
child.kill(stopSignal);
const { code, signal } = await exited;
clearTimeout(giveUp);
if (code !== 0) fail(`the gateway exited with ${code ?? signal} on ${stopSignal}, not 0:\n${log}`);
if (!log.includes('Cleanup called') || !log.includes('"msg":"gateway stopped"')) fail(`no cleanup in the log after ${stopSignal}:\n${log}`);
if (opts.keep) console.log(`check-dockerfile: kept ${work}`);
else rmSync(work, { recursive: true, force: true });
console.log(`check-dockerfile: ok (built, served, ${stopSignal} -> cleanup, exit 0)`);
