// Runs one of the benchmark's own servers (bench/upstream-child.ts,
// bench/bare-proxy-child.ts) as a child process, pinned like the gateway when
// asked, and waits for the "listening <port>" line it prints when ready.

import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { PartContext } from './types.js';

export interface ServerChild {
  pid: number;
  /** http://127.0.0.1:<port> */
  url: string;
  child: ChildProcess;
  /** The last few KiB it printed (for error messages). */
  output(): string;
  stop(): Promise<void>;
}

export interface ServerChildOptions {
  /** For messages, e.g. "upstream". */
  name: string;
  /** The compiled script, relative to dist/bench (e.g. "upstream-child.js"). */
  script: string;
  args?: string[];
  /** CPU list for `taskset -c`; ignored without taskset. */
  cpus?: string;
  readyTimeoutMs?: number;
}

/**
 * @example
 * const up = await startServerChild(ctx, { name: 'upstream', script: 'upstream-child.js', cpus: '0' });
 * await fetch(`${up.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
 * await up.stop();
 */
export async function startServerChild(ctx: PartContext, o: ServerChildOptions): Promise<ServerChild> {
  const nodeArgs = [path.join(ctx.root, 'dist/bench', o.script), ...(o.args ?? [])];
  const [command, args] = ctx.taskset && o.cpus ? ['taskset', ['-c', o.cpus, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child = ctx.children.spawn(command, args, { cwd: ctx.root, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const output = () => tail;
  const stop = () => ctx.children.stop(child);
  const timeoutMs = o.readyTimeoutMs ?? 15_000;
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${o.name} not ready after ${timeoutMs} ms:\n${tail}`)), timeoutMs);
      const keep = (b: Buffer) => {
        tail = (tail + b.toString('utf8')).slice(-4096);
        const m = /^listening (\d+)$/m.exec(tail);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${o.name} exited with ${signal ?? `code ${code}`} before it was ready:\n${tail}`));
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`${o.name} could not start: ${e.message}`));
      });
    });
    if (child.pid === undefined) throw new Error(`${o.name}: no pid`);
    return { pid: child.pid, url: `http://127.0.0.1:${port}`, child, output, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * The OpenAI-style upstream both the bare proxy and Sandgate's openai provider call, with its base URL (".../v1").
 * @example
 * const upstream = await startUpstream(ctx, '0');
 * await startGatewayChild(ctx, { name: 'gw', plugins: [], upstream: upstream.baseUrl });
 */
export async function startUpstream(ctx: PartContext, cpus: string | undefined): Promise<ServerChild & { baseUrl: string }> {
  const up = await startServerChild(ctx, { name: 'upstream', script: 'upstream-child.js', cpus });
  return { ...up, baseUrl: `${up.url}/v1` };
}

/**
 * The bare Hono + undici proxy in front of `upstreamBaseUrl`.
 * @example
 * const bare = await startBareProxy(ctx, upstream.baseUrl, '1'); // POST ${bare.url}/v1/chat/completions
 */
export function startBareProxy(ctx: PartContext, upstreamBaseUrl: string, cpus: string | undefined): Promise<ServerChild> {
  return startServerChild(ctx, { name: 'bare proxy', script: 'bare-proxy-child.js', args: ['--upstream', upstreamBaseUrl], cpus });
}
