/** What the harness reads from the server's /metrics: decisions by reason, RSS, check-time histogram. */
export interface MetricsSnapshot {
  readonly decisions: ReadonlyMap<string, number>;
  readonly rssBytes: number;
  /** Cumulative bucket counts of zt_authz_check_duration_seconds, by upper bound in seconds. */
  readonly checkBuckets: readonly { le: number; count: number }[];
}

export async function scrape(httpAddress: string): Promise<MetricsSnapshot> {
  const res = await fetch(`http://${httpAddress}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
  return parseMetrics(await res.text());
}

export function parseMetrics(text: string): MetricsSnapshot {
  const decisions = new Map<string, number>();
  const buckets: { le: number; count: number }[] = [];
  let rssBytes = Number.NaN;
  for (const line of text.split('\n')) {
    if (line.startsWith('zt_authz_decisions_total{')) {
      const reason = /reason="([^"]*)"/.exec(line)?.[1];
      if (reason !== undefined) decisions.set(reason, (decisions.get(reason) ?? 0) + value(line));
    } else if (line.startsWith('zt_authz_check_duration_seconds_bucket{')) {
      const le = /le="([^"]*)"/.exec(line)?.[1];
      if (le !== undefined) buckets.push({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), count: value(line) });
    } else if (line.startsWith('process_resident_memory_bytes ')) {
      rssBytes = value(line);
    }
  }
  return { decisions, rssBytes, checkBuckets: buckets };
}

function value(line: string): number {
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Decisions by reason between two scrapes (zero counts dropped). */
export function decisionDelta(before: MetricsSnapshot, after: MetricsSnapshot): Map<string, number> {
  const out = new Map<string, number>();
  for (const [reason, n] of after.decisions) {
    const d = n - (before.decisions.get(reason) ?? 0);
    if (d !== 0) out.set(reason, d);
  }
  return out;
}

/**
 * Server-side check-time percentiles from the histogram delta, interpolated linearly inside a
 * bucket (so only as precise as the buckets: 50/100/250/500 µs, 1 ms, ...). Microseconds.
 */
export function histogramPercentiles(before: MetricsSnapshot, after: MetricsSnapshot, ps: readonly number[]): number[] {
  const delta = after.checkBuckets.map((b, i) => ({ le: b.le, count: b.count - (before.checkBuckets[i]?.count ?? 0) }));
  const total = delta.at(-1)?.count ?? 0;
  return ps.map((p) => {
    if (total === 0) return Number.NaN;
    const want = (p / 100) * total;
    let prevLe = 0;
    let prevCount = 0;
    for (const b of delta) {
      if (b.count >= want) {
        if (!Number.isFinite(b.le)) return prevLe * 1e6;
        const inBucket = b.count - prevCount;
        const frac = inBucket === 0 ? 1 : (want - prevCount) / inBucket;
        return (prevLe + frac * (b.le - prevLe)) * 1e6;
      }
      prevLe = b.le;
      prevCount = b.count;
    }
    return prevLe * 1e6;
  });
}
