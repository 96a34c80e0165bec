// Runs the real gateway CLI as a child process for load tests.

import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { PartContext } from './types.js';

export interface GatewayChild {
  pid: number;
  url: string;
  /** Plugin worker threads, from /health. */
  workers: number | undefined;
  child: ChildProcess;
  /** The last few KiB the gateway printed (for error messages). */
  output(): string;
  stop(): Promise<void>;
}

export interface GatewayChildOptions {
  /** File name stem for the temp config. */
  name: string;
  plugins: { name: string; path: string }[];
  /** CPU list for `taskset -c`; ignored without taskset. */
  cpus?: string;
  logLevel?: string;
  /** runtime.workers (plugin worker threads); the gateway's default when absent. */
  workers?: number;
  /** Other runtime settings (e.g. reload_debounce_ms), as config.json spells them. */
  runtime?: Record<string, unknown>;
  readyTimeoutMs?: number;
  /**
   * Base URL (".../v1") of an OpenAI-style upstream, served as provider
   * UPSTREAM_PROVIDER (type "openai", its defaults) next to the built-in mock.
   */
  upstream?: string;
}

/**
 * The provider name requests use ("upstream/<model>") to reach GatewayChildOptions.upstream.
 * @example
 * chatBody(`${UPSTREAM_PROVIDER}/echo`);
 */
export const UPSTREAM_PROVIDER = 'upstream';

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function startGatewayChild(ctx: PartContext, o: GatewayChildOptions): Promise<GatewayChild> {
  const port = await freePort();
  const configFile = path.join(ctx.tmpDir, `${o.name}.json`);
  const config = {
    server: { host: '127.0.0.1', port },
    log_level: o.logLevel ?? 'warn',
    runtime: { ...o.runtime, ...(o.workers ? { workers: o.workers } : {}) },
    providers: { mock: { type: 'mock', latency_ms: 0 }, ...(o.upstream ? { [UPSTREAM_PROVIDER]: { type: 'openai', base_url: o.upstream } } : {}) },
    plugins: o.plugins,
  };
  await writeFile(configFile, JSON.stringify(config, null, 2));

  const cli = path.join(ctx.root, 'dist/host/main/cli.js');
  const nodeArgs = [cli, '--config', configFile, '--port', String(port)];
  const [command, args] = ctx.taskset && o.cpus ? ['taskset', ['-c', o.cpus, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child = ctx.children.spawn(command, args, { cwd: ctx.root, stdio: ['ignore', 'pipe', 'pipe'] });

  let tail = '';
  const keep = (b: Buffer) => {
    tail = (tail + b.toString('utf8')).slice(-4096);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const output = () => tail;
  const stop = () => ctx.children.stop(child);

  let exited: string | null = null;
  child.once('exit', (code, signal) => (exited = `exited with ${signal ?? `code ${code}`}`));
  child.once('error', (e) => (exited = `could not start: ${e.message}`));

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (o.readyTimeoutMs ?? 20_000);
  try {
    for (;;) {
      if (exited) throw new Error(`gateway ${o.name} ${exited} before it was ready:\n${output()}`);
      if (Date.now() > deadline) throw new Error(`gateway ${o.name} not ready after ${o.readyTimeoutMs ?? 20_000} ms:\n${output()}`);
      const health = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })
        .then((res) => (res.ok ? (res.json() as Promise<{ workers?: { workers?: number } }>) : null))
        .catch(() => null); // not listening yet
      if (health && child.pid !== undefined) return { pid: child.pid, url, workers: health.workers?.workers, child, output, stop };
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    await stop();
    throw e;
  }
}
