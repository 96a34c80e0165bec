import autocannon from 'autocannon';
import { Samples } from './stats.js';

export interface LoadResult {
  ok: number;
  bad: number;
  errors: number;
  latencyMs: Samples;
  elapsedS: number;
}

export interface LoadOptions {
  url: string;
  method: 'GET' | 'POST';
  connections: number;
  seconds: number;
  headers: Record<string, string>;
  body?: Buffer;
  /** Stops the load early when it settles (`seconds` stays the upper bound). */
  until?: Promise<unknown>;
}

/** One autocannon run of `seconds` (or until `until` settles), with a wall-clock guard; counts and times 2xx responses itself. */
export function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const latencyMs = new Samples(1_000_000);
  let ok = 0;
  let bad = 0;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let guard: NodeJS.Timeout | undefined = undefined;
    const inst = autocannon(
      { url: opts.url, method: opts.method, connections: opts.connections, duration: opts.seconds, timeout: 10, headers: opts.headers, body: opts.body },
      (err, result) => {
        clearTimeout(guard);
        if (err) return reject(err);
        resolve({ ok, bad, errors: result.errors + result.timeouts, latencyMs, elapsedS: (performance.now() - started) / 1000 });
      },
    );
    inst.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) {
        ok++;
        latencyMs.add(ms);
      } else bad++;
    });
    guard = setTimeout(() => inst.stop(), (opts.seconds + 5) * 1000);
    opts.until?.finally(() => inst.stop()).catch(() => {});
  });
}
