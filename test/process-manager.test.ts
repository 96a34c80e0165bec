// The start commands the README documents, run exactly as documented and
// stopped the way process managers stop them: SIGTERM (systemd, docker stop,
// Kubernetes) or SIGINT (Ctrl-C) sent to the process the command started.
// Whatever sits between the signal and the gateway (npm, its `sh -c`) must pass
// it on: in-flight requests are answered, cleanup runs, the command exits 0 and
// no gateway is left behind serving on the port.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { type CliGateway, startCommand, writeConfigFile } from './helpers/cli.js';
import { CHAT } from './helpers/gateway.js';
import { fixture, ROOT, samplePlugin } from './helpers/paths.js';

const CONFIG = {
  log_level: 'info',
  plugins: [
    // Logs each hook, and "Cleanup called" from cleanup.
    { name: 'hello-world', path: samplePlugin('hello-world') },
    // Holds each request in pre_llm_hook for 50 ms, so it is in flight when the signal arrives.
    { name: 'slow', path: fixture('slow-llm'), timeout_ms: 1000 },
  ],
};

/** The README's commands, with this test's config file and a free port. */
const COMMANDS: Record<string, (config: string) => [string, string[]]> = {
  // Quick start (its prestart build finds everything up to date: a second or two).
  'npm start': (config) => ['npm', ['start', '--', '--config', config, '--port', '0']],
  // Production, systemd and the Dockerfile's CMD.
  'node dist/host/main/cli.js': (config) => ['node', ['dist/host/main/cli.js', '--config', config, '--port', '0']],
};

/** Pids of live processes whose command line mentions `text` (Linux /proc). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

async function waitForInFlight(gw: CliGateway, count: number): Promise<void> {
  // hello-world logs each transport pre-hook: once all are logged, every request
  // is inside the gateway (one not yet accepted when the listener closes is rightly refused).
  while ((gw.output().match(/HTTPTransportPreHook called/g) ?? []).length < count) await new Promise((r) => setTimeout(r, 5));
}

async function stopUnderLoad(command: string, signal: NodeJS.Signals, target: 'process' | 'group'): Promise<void> {
  const config = writeConfigFile(CONFIG);
  const [file, args] = COMMANDS[command](config);
  const gw = await startCommand(file, args, { detached: target === 'group' });
  try {
    const inFlight = Array.from({ length: 4 }, () =>
      fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CHAT('finish me')) }),
    );
    await waitForInFlight(gw, 4);
    // Bounded: a command that never passes the signal on must fail here, not hang the suite.
    const exited = new Promise<[number | null, string | null] | string>((resolve) => {
      const timer = setTimeout(() => resolve('still running 10 s after the signal'), 10_000);
      gw.child.on('exit', (code, sig) => {
        clearTimeout(timer);
        resolve([code, sig]);
      });
    });
    if (target === 'group') {
      process.kill(-gw.child.pid!, signal);
      // The copies of a group signal race: the gateway may get npm's forwarded copy
      // before or after its own handler ran. Signal again once it is shutting down,
      // so the "after" order is always tested.
      while (!gw.output().includes('"msg":"shutting down"')) await new Promise((r) => setTimeout(r, 5));
      process.kill(-gw.child.pid!, signal);
    } else gw.child.kill(signal);

    const signalled = Date.now();
    const responses = await Promise.all(inFlight);
    assert.deepEqual(
      responses.map((r) => r.status),
      [200, 200, 200, 200],
      'requests in flight at the signal are answered',
    );
    assert.deepEqual(await exited, [0, null], `\`${command}\` exits 0 on ${signal}\n${gw.output()}`);
    // fetch keeps each connection open for about 3 s after its response; the drain
    // closes connections as they go idle instead of waiting for the client.
    assert.ok(Date.now() - signalled < 2000, `stopped ${Date.now() - signalled} ms after the signal, not held by idle keep-alive connections`);
    const logs = gw.output();
    assert.match(logs, new RegExp(`"signal":"${signal}","msg":"shutting down"`));
    assert.ok(logs.indexOf('Cleanup called') > logs.lastIndexOf('PostLLMHook called'), 'cleanup ran, after the in-flight calls ended');
    assert.match(logs, /"msg":"gateway stopped"/);
    assert.deepEqual(processesMentioning(config), [], 'no process of the command is left (no orphaned gateway)');
    await assert.rejects(fetch(`${gw.url}/health`), 'nothing listens on the port any more');
  } finally {
    // Never leave an orphan behind for the rest of the suite, even when an assertion failed.
    for (const pid of processesMentioning(config)) process.kill(pid, 'SIGKILL');
    gw.child.kill('SIGKILL');
  }
}

describe('process managers: the documented start commands stop cleanly on a signal', () => {
  for (const command of Object.keys(COMMANDS)) {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      it(`${signal} sent to \`${command}\`: in-flight requests answered, cleanup ran, exit 0, no orphan`, () =>
        stopUnderLoad(command, signal, 'process'));
    }
  }

  // A terminal's Ctrl-C signals the whole foreground process group, and systemd's
  // default KillMode=control-group does the same with SIGTERM: the gateway gets the
  // signal twice (once directly, once forwarded by npm) and must still drain.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} sent to the whole process group of \`npm start\` (Ctrl-C, systemd): still drains, exit 0`, () =>
      stopUnderLoad('npm start', signal, 'group'));
  }
});

/** Runs scripts/check-dockerfile.mjs (docker has no daemon on the CI machine); resolves with its exit code and output. */
function checkDockerfile(args: string[] = []): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['scripts/check-dockerfile.mjs', ...args], { cwd: ROOT });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, output })));
}

describe('Dockerfile (its steps run by scripts/check-dockerfile.mjs)', () => {
  it('builds from a clean copy of the repository, its CMD serves, and stops on SIGTERM with cleanup and exit 0', { timeout: 240_000 }, async () => {
    const { code, output } = await checkDockerfile();
    assert.equal(code, 0, output);
    assert.match(output, /CMD \["node","dist\/host\/main\/cli.js"/, 'the CMD runs node itself');
    assert.match(output, /the gateway answers on its port \(200, processed by hello-world\); sending SIGTERM/);
    assert.match(output, /check-dockerfile: ok/);
  });

  it('refuses a shell-form CMD (a shell in between would not pass SIGTERM on)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sandgate-dockerfile-test-'));
    const file = path.join(dir, 'Dockerfile');
    writeFileSync(file, 'FROM node:20-bookworm-slim\nWORKDIR /app\nCMD node dist/host/main/cli.js --config config.json\n');
    const { code, output } = await checkDockerfile(['--file', file]);
    rmSync(dir, { recursive: true });
    assert.equal(code, 1);
    assert.match(output, /Dockerfile:3: CMD must be exec form/);
  });
});
