// Small statistics helpers shared by the benchmark parts.

/** A fixed-capacity recorder of samples (no reallocation while measuring). */
export class Samples {
  private readonly values: Float64Array;
  private n = 0;

  constructor(capacity: number) {
    this.values = new Float64Array(capacity);
  }

  /** Records one value; silently ignores values past the capacity. */
  add(v: number): void {
    if (this.n < this.values.length) this.values[this.n++] = v;
  }

  get count(): number {
    return this.n;
  }

  summary(): Summary {
    return summarize(this.values.subarray(0, this.n));
  }
}

export interface Summary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  min: number;
  max: number;
}

/** Nearest-rank percentile of an already sorted array (p in 0..100). */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function summarize(values: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i];
  return {
    count: sorted.length,
    mean: sorted.length ? sum / sorted.length : NaN,
    p50: percentileSorted(sorted, 50),
    p90: percentileSorted(sorted, 90),
    p99: percentileSorted(sorted, 99),
    min: sorted.length ? sorted[0] : NaN,
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
  };
}

export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

/** Largest relative deviation from the mean, as a fraction (0.05 = 5%). */
export function spread(values: readonly number[]): number {
  const m = mean(values);
  if (!(m > 0) || values.length < 2) return NaN;
  return Math.max(...values.map((v) => Math.abs(v - m))) / m;
}

/** Formats a number with a fixed number of decimals, or "n/a". */
export function fmt(v: number | undefined, decimals = 1): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  return v.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

export function fmtInt(v: number | undefined): string {
  return fmt(v, 0);
}

export function fmtPct(fraction: number | undefined, decimals = 0): string {
  if (fraction === undefined || !Number.isFinite(fraction)) return 'n/a';
  return `${fmt(fraction * 100, decimals)}%`;
}

export function fmtSigned(v: number | undefined, decimals = 0): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  return `${v >= 0 ? '+' : ''}${fmt(v, decimals)}`;
}
