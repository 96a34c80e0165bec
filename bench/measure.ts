// A bounded loop timing one awaited operation at a time.

import { Samples, type Summary } from './stats.js';

export interface LoopOptions {
  warmupCalls: number;
  /** The warm-up stops early after this long. */
  warmupMaxMs: number;
  calls: number;
  /** The measurement stops early after this long. */
  maxMs: number;
}

export interface LoopResult {
  /** Per-call wall time, microseconds. */
  latency: Summary;
  /** Process CPU time (all threads of this process) per call, microseconds. */
  cpuPerCall: number;
  /** Calls per second over the measured loop. */
  rate: number;
  /** Warm-up calls actually made (the warm-up may stop early on time). */
  warmupCalls: number;
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Runs fn sequentially: a warm-up, then `calls` timed calls (both bounded in time). */
export async function timeLoop(fn: () => Promise<unknown> | unknown, o: LoopOptions): Promise<LoopResult> {
  let end = performance.now() + o.warmupMaxMs;
  let warmupCalls = 0;
  while (warmupCalls < o.warmupCalls && performance.now() < end) {
    await fn();
    warmupCalls++;
  }

  const samples = new Samples(o.calls);
  const cpu0 = cpuMicros();
  const start = performance.now();
  end = start + o.maxMs;
  for (let i = 0; i < o.calls; i++) {
    const t0 = performance.now();
    await fn();
    const t1 = performance.now();
    samples.add((t1 - t0) * 1000);
    if (t1 > end) break;
  }
  const elapsed = performance.now() - start;
  const cpu = cpuMicros() - cpu0;
  return { latency: samples.summary(), cpuPerCall: cpu / samples.count, rate: (samples.count * 1000) / elapsed, warmupCalls };
}
