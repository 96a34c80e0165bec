import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLI, ROOT } from '../helpers/paths.js';
import { InspectorGc } from './inspector-gc.js';

// The real gateway CLI in a child process, as an operator runs it, so the soak
// can read the process's own RSS, threads and open files from /proc, and force
// a GC in it from outside (inspector-gc.ts). Its JSON log lines are counted by
// message (a soak logs too much to keep every line); warnings and errors are
// kept whole.

export interface GatewayProcess {
  pid: number;
  url: string;
  gc: InspectorGc;
  /** How many log lines had this `msg` so far. */
  count(msg: string): number;
  /** Warn and error lines (the first 200). */
  problems: Record<string, unknown>[];
  /** VmRSS in bytes, from /proc/<pid>/status. */
  rss(): number;
  /** Threads of the process (main, libuv pool, V8 platform, inspector, plugin workers). */
  threads(): number;
  /** Open file descriptors (/proc/<pid>/fd). */
  fds(): number;
  /** SIGTERM, then SIGKILL after 10 s; resolves once it has exited. */
  stop(): Promise<void>;
}

function statusField(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** Writes `config` to `<dir>/config.json` and starts the gateway on it, with the inspector on a loopback port. */
export async function startGatewayProcess(dir: string, config: Record<string, unknown>, readyTimeoutMs = 20_000): Promise<GatewayProcess> {
  const configFile = path.join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify({ ...config, server: { host: '127.0.0.1', port: 0 } }, null, 2));
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:0`.trim() };
  delete env.NODE_TEST_CONTEXT; // the gateway is not a test file
  const child: ChildProcess = spawn(process.execPath, [CLI, '--config', configFile], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });

  const counts = new Map<string, number>();
  const problems: Record<string, unknown>[] = [];
  let url: string | undefined;
  let inspectorUrl: string | undefined;
  let stderr = '';
  let pending = '';
  child.stdout!.on('data', (b: Buffer) => {
    pending += b.toString('utf8');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!line.trim()) continue;
      const entry = JSON.parse(line) as { msg: string; level: number; url?: string };
      counts.set(entry.msg, (counts.get(entry.msg) ?? 0) + 1);
      if (entry.level >= 40 && problems.length < 200) problems.push(entry);
      if (entry.msg === 'gateway listening') url = entry.url;
    }
  });
  child.stderr!.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString('utf8')).slice(-8192);
    inspectorUrl ??= /Debugger listening on (ws:\/\/\S+)/.exec(stderr)?.[1];
  });
  let exited = false;
  // If this test process ends without stop() (a timeout, a crash), the gateway must not outlive it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      process.off('exit', killOnExit);
      resolve();
    }),
  );

  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exit;
    clearTimeout(timer);
  };

  const deadline = Date.now() + readyTimeoutMs;
  while (!url || !inspectorUrl) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`the gateway ${exited ? 'exited' : 'was not ready'} before it listened:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const pid = child.pid!;
  let gc: InspectorGc;
  try {
    gc = await InspectorGc.connect(inspectorUrl);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    pid,
    url,
    gc,
    count: (msg) => counts.get(msg) ?? 0,
    problems,
    rss: () => statusField(pid, 'VmRSS') * 1024,
    threads: () => statusField(pid, 'Threads'),
    fds: () => readdirSync(`/proc/${pid}/fd`).length,
    stop: async () => {
      gc.close();
      await stop();
    },
  };
}
