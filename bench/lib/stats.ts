/** Nearest-rank percentile of an ascending-sorted array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export const PERCENTILES = [50, 90, 99, 99.9] as const;

export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly count: number;
}

export function summarize(values: Float64Array | number[]): Percentiles {
  const sorted = Float64Array.from(values).sort();
  return {
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
    count: sorted.length,
  };
}

/** A percentile curve for charts: the value at each of `points` log-spaced percentiles up to p99.99. */
export function percentileCurve(values: Float64Array | number[], points = 60): { p: number; v: number }[] {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return [];
  const out: { p: number; v: number }[] = [];
  // x = -log10(1 - p/100): 0 (p0) .. 4 (p99.99), so the tail gets as much room as the body.
  for (let i = 0; i <= points; i++) {
    const x = (4 * i) / points;
    const p = 100 * (1 - 10 ** -x);
    out.push({ p, v: percentile(sorted, Math.max(p, 0.0001)) });
  }
  return out;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Median over rounds of server/baseline, each pair measured back to back. On a shared machine
 * the absolute rate drifts by tens of percent within a minute; a ratio of two runs seconds apart
 * cancels most of that, a ratio of two medians taken minutes apart does not.
 */
export function pairedRatio(baseline: readonly number[], server: readonly number[]): number {
  return median(server.map((s, i) => s / baseline[i]!));
}

export function ratioRange(baseline: readonly number[], server: readonly number[]): string {
  const r = server.map((s, i) => s / baseline[i]!);
  return `${Math.min(...r).toFixed(2)}-${Math.max(...r).toFixed(2)}`;
}
