import { AggregatorRegistry, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastHistogram } from '../../src/observability/fast-histogram.js';
import { createMetrics } from '../../src/observability/metrics.js';

describe('hot-path metrics', () => {
  it('FastHistogram exports cumulative buckets, +Inf, sum and count in the Prometheus text format', async () => {
    const registry = new Registry();
    const h = new FastHistogram('t_seconds', 'test', [0.001, 0.01, 0.1], registry);
    for (const v of [0.0005, 0.001, 0.005, 0.05, 2]) h.observe(v);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE t_seconds histogram');
    expect(text).toContain('t_seconds_bucket{le="0.001"} 2');
    expect(text).toContain('t_seconds_bucket{le="0.01"} 3');
    expect(text).toContain('t_seconds_bucket{le="0.1"} 4');
    expect(text).toContain('t_seconds_bucket{le="+Inf"} 5');
    expect(text).toContain('t_seconds_count 5');
    expect(Number(/t_seconds_sum (\S+)/.exec(text)?.[1])).toBeCloseTo(2.0565, 9);
  });

  it('FastHistogram sums across cluster workers like a prom-client histogram', async () => {
    const workers = [new Registry(), new Registry()];
    const hs = workers.map((r) => new FastHistogram('w_seconds', 'test', [0.01], r));
    hs[0]!.observe(0.001);
    hs[1]!.observe(0.001);
    hs[1]!.observe(1);
    const merged = AggregatorRegistry.aggregate(await Promise.all(workers.map((r) => r.getMetricsAsJSON())));
    const text = await merged.metrics();
    expect(text).toContain('w_seconds_bucket{le="0.01"} 2');
    expect(text).toContain('w_seconds_bucket{le="+Inf"} 3');
    expect(text).toContain('w_seconds_count 3');
  });

  it('token-cache lookups counted as plain numbers reach the labelled counter at scrape, once', async () => {
    const m = createMetrics();
    m.tokenCacheCounts.hit += 3;
    m.tokenCacheCounts.miss += 1;
    const first = await m.registry.metrics();
    expect(first).toContain('zt_authz_token_cache_total{result="hit"} 3');
    expect(first).toContain('zt_authz_token_cache_total{result="miss"} 1');
    m.tokenCacheCounts.hit += 1;
    const second = await m.registry.metrics();
    expect(second).toContain('zt_authz_token_cache_total{result="hit"} 4');
    expect(second).toContain('zt_authz_token_cache_total{result="miss"} 1');
  });
});
