import type { PluginSpec } from '../messages.js';

// How much log text a plugin may write (ABI.md §7.1): per call
// (max_log_bytes_per_call) and per plugin and worker (max_log_bytes_per_second,
// a token bucket). What goes over is dropped, counted, and reported in a line
// of its own: once per call for the per-call budget, at most once a second for
// the rate, so the reports cannot flood the log either.

/** How often a plugin's rate drops are reported, at most. */
const RATE_REPORT_EVERY_MS = 1000;

/**
 * One plugin's rate in this worker: a token bucket holding one second's worth,
 * refilled continuously. It belongs to the plugin, not the instance, so a
 * plugin that crashes and is re-created does not get a fresh one.
 */
interface Bucket {
  tokens: number;
  at: number;
  /** Dropped since the last report line. */
  unreportedBytes: number;
  unreportedLines: number;
  reportedAt: number;
}

/** Every plugin's bucket in this worker. */
export class LogRates {
  private readonly buckets = new Map<string, Bucket>();

  /** The plugin's bucket, refilled up to now. */
  bucket(spec: PluginSpec): Bucket {
    const now = performance.now();
    let b = this.buckets.get(spec.id);
    if (!b) {
      b = { tokens: spec.maxLogBytesPerSecond, at: now, unreportedBytes: 0, unreportedLines: 0, reportedAt: -Infinity };
      this.buckets.set(spec.id, b);
    } else {
      b.tokens = Math.min(spec.maxLogBytesPerSecond, b.tokens + ((now - b.at) / 1000) * spec.maxLogBytesPerSecond);
      b.at = now;
    }
    return b;
  }

  /** Forgets an unloaded plugin version. */
  forget(pid: string): void {
    this.buckets.delete(pid);
  }
}

/**
 * One call's log budget.
 *
 * @example
 * const budget = new CallLogBudget(spec, rates);
 * const n = budget.allow(line.length); // write the first n bytes, drop the rest
 * for (const report of budget.end().reports) log(2, report);
 */
export class CallLogBudget {
  private written = 0;
  private droppedBytes = 0;
  private droppedLines = 0;
  private rateDroppedBytes = 0;
  private rateDroppedLines = 0;

  constructor(
    private readonly spec: PluginSpec,
    private readonly rates: LogRates,
  ) {}

  /** How many of `len` more bytes may be written now; the rest is counted as dropped. */
  allow(len: number): number {
    const perCall = Math.min(len, Math.max(0, this.spec.maxLogBytesPerCall - this.written));
    if (perCall < len) {
      this.droppedBytes += len - perCall;
      this.droppedLines++;
    }
    if (perCall === 0) return 0;
    const bucket = this.rates.bucket(this.spec);
    const taken = Math.min(perCall, Math.floor(bucket.tokens));
    bucket.tokens -= taken;
    this.written += taken;
    if (taken < perCall) {
      this.rateDroppedBytes += perCall - taken;
      this.rateDroppedLines++;
    }
    return taken;
  }

  /** At the call's end: the report lines due, and every byte this call dropped. */
  end(): { reports: string[]; droppedBytes: number } {
    const { spec } = this;
    const reports: string[] = [];
    if (this.droppedBytes > 0) {
      reports.push(`log output over max_log_bytes_per_call (${spec.maxLogBytesPerCall} bytes): ${this.droppedBytes} bytes in ${this.droppedLines} writes dropped`);
    }
    if (this.rateDroppedBytes > 0) {
      const bucket = this.rates.bucket(spec);
      bucket.unreportedBytes += this.rateDroppedBytes;
      bucket.unreportedLines += this.rateDroppedLines;
      if (bucket.at - bucket.reportedAt >= RATE_REPORT_EVERY_MS) {
        reports.push(
          `log output over max_log_bytes_per_second (${spec.maxLogBytesPerSecond} bytes a second in this worker): ${bucket.unreportedBytes} bytes in ${bucket.unreportedLines} writes dropped since the last such line`,
        );
        bucket.unreportedBytes = 0;
        bucket.unreportedLines = 0;
        bucket.reportedAt = bucket.at;
      }
    }
    return { reports, droppedBytes: this.droppedBytes + this.rateDroppedBytes };
  }
}
