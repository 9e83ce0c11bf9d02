import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { eventually, startRedis, type RedisProcess } from '../helpers/redis.js';
import type { Metrics } from '../../src/observability/metrics.js';
import { RedisStateStore, type StateStore } from '../../src/state/index.js';
import { eventCount, openStore, plainClient, redisConfig } from './fixtures.js';
import { waitFor } from '../helpers/server.js';

const REMEDIATION = { remediation: { threshold: 5, window_s: 60, block_ttl_s: 1800 } };
/** Overall bound for waiting on an event: generous, so a loaded machine only makes the test slower. */
const WAIT_MS = 20_000;

describe('auto-remediation in Redis', () => {
  let redis: RedisProcess;
  let a: StateStore;
  let b: StateStore;
  let r: Redis;
  let metricsA: Metrics;

  beforeAll(async () => {
    redis = await startRedis();
    ({ store: a, metrics: metricsA } = await openStore(redisConfig(redis.url, REMEDIATION)));
    ({ store: b } = await openStore(redisConfig(redis.url, REMEDIATION)));
    r = plainClient(redis.url);
    await r.connect();
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    r?.disconnect();
    await redis?.stop();
  });

  it('blocks an IP after N failures, with TTL and a security alert; other IPs are unaffected', async () => {
    const now = Date.now();
    for (let i = 0; i < 5; i++) a.recordAuthFailure('198.51.100.23', now);
    for (let i = 0; i < 4; i++) a.recordAuthFailure('198.51.100.24', now);
    await eventually(() => a.ipBlocked('198.51.100.23', Date.now()) === 'listed', WAIT_MS, 'block');
    const ttl = await r.ttl('blocked_ip:198.51.100.23');
    expect(ttl).toBeGreaterThan(1790);
    expect(ttl).toBeLessThanOrEqual(1800);
    // The mirror enforces the block before the alert is written (LPUSH follows the SET): wait for it.
    let alerts: Record<string, unknown>[] = [];
    await waitFor(async () => {
      alerts = (await r.lrange('security_alerts', 0, -1)).map((s) => JSON.parse(s) as Record<string, unknown>);
      return alerts.length > 0;
    }, WAIT_MS, 'the security alert');
    expect(alerts).toContainEqual(expect.objectContaining({ type: 'auto_block', ip: '198.51.100.23', failures: 5, window_s: 60 }));
    expect(await r.ttl('security_alerts')).toBeGreaterThan(86_000);
    // The other sidecar enforces it through the invalidation.
    await eventually(() => b.ipBlocked('198.51.100.23', Date.now()) === 'listed', WAIT_MS, 'other sidecar');
    expect(a.ipBlocked('198.51.100.24', Date.now())).toBe('clear');
    expect(await r.exists('blocked_ip:198.51.100.24')).toBe(0);
  });

  it('counts across sidecars in one sliding window', async () => {
    const now = Date.now();
    for (let i = 0; i < 3; i++) a.recordAuthFailure('2001:db8::bad', now);
    for (let i = 0; i < 2; i++) b.recordAuthFailure('2001:db8:0::BAD', now);
    await eventually(() => a.ipBlocked('2001:db8::bad', Date.now()) === 'listed', WAIT_MS, 'shared window');
    expect(await r.exists('blocked_ip:2001:db8::bad')).toBe(1);
  });

  it('forgets failures older than the window', async () => {
    const store = a as RedisStateStore;
    const old = Date.now() - 120_000;
    for (let i = 0; i < 4; i++) store.recordAuthFailure('192.0.2.77', old);
    await store.flushAuthFailures();
    store.recordAuthFailure('192.0.2.77', Date.now());
    await store.flushAuthFailures();
    expect(await r.zcard('auth_failures:192.0.2.77')).toBe(1);
    expect(store.ipBlocked('192.0.2.77', Date.now())).toBe('clear');
    expect(await r.exists('blocked_ip:192.0.2.77')).toBe(0);
  });

  it('ignores input that is not an IP and never throws', async () => {
    for (const bad of ['', 'not-an-ip', '*', '1.2.3.4/8', 'x'.repeat(10_000)]) {
      expect(() => a.recordAuthFailure(bad, Date.now())).not.toThrow();
    }
    await (a as RedisStateStore).flushAuthFailures();
    expect(await r.keys('auth_failures:*[^0-9a-f:.]*')).toEqual([]);
  });

  it('does not wait on Redis: recording while Redis is stopped returns at once', async () => {
    redis.pause();
    try {
      // Synchronous and fire-and-forget: the 1000 calls finish before any I/O turn could run,
      // so none of them can have waited on the stopped Redis.
      let ioTurn = false;
      const immediate = setImmediate(() => (ioTurn = true));
      for (let i = 0; i < 1000; i++) expect(a.recordAuthFailure('192.0.2.88', Date.now())).toBeUndefined();
      expect(ioTurn).toBe(false);
      clearImmediate(immediate);
      // The flush fails on the command timeout instead of piling up: it settles, and counts the
      // error, while Redis is still stopped (if it waited for Redis it would never settle here).
      const errorsBefore = await eventCount(metricsA, 'error');
      let guard: NodeJS.Timeout | undefined;
      const settled = await Promise.race([
        (a as RedisStateStore).flushAuthFailures().then(() => 'settled'),
        new Promise<string>((resolve) => (guard = setTimeout(() => resolve('still waiting'), WAIT_MS))),
      ]);
      clearTimeout(guard);
      expect(settled).toBe('settled');
      expect(await eventCount(metricsA, 'error')).toBeGreaterThan(errorsBefore);
      expect(a.ipBlocked('192.0.2.88', Date.now())).not.toBe('listed');
    } finally {
      redis.resume();
    }
    // Counts kept across the outage are flushed later.
    await eventually(() => a.ipBlocked('192.0.2.88', Date.now()) === 'listed', WAIT_MS, 'block after recovery');
  });
});
