import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { eventually, startRedis, type RedisProcess } from '../helpers/redis.js';
import type { Metrics } from '../../src/observability/metrics.js';
import type { RedisStateStore } from '../../src/state/index.js';
import { eventCount, openStore, plainClient, redisConfig } from './fixtures.js';

/**
 * Invalidations that arrive together are re-read together. Whatever mix a batch holds (a deleted
 * key, a key without TTL, a risk hash, a plain-string risk, a risk key of a type that holds no
 * score), each key lands as Redis has it, and none of them fails the batch into a full resync.
 */
describe('re-reading invalidated keys in batches', () => {
  let redis: RedisProcess;
  let store: RedisStateStore;
  let metrics: Metrics;
  let writer: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    const opened = await openStore(redisConfig(redis.url));
    store = opened.store as RedisStateStore;
    metrics = opened.metrics;
    writer = plainClient(redis.url);
    await writer.connect();
    await eventually(() => store.synced, 5000, 'in sync');
  });
  afterAll(async () => {
    writer?.disconnect();
    await store?.close();
    await redis?.stop();
  });

  it('applies a mixed batch written in one transaction, with no resync', async () => {
    await writer.set('suspended_user:leaving', 'true', 'EX', 600);
    await writer.set('user_risk:was-hash', 'x');
    await eventually(() => store.userSuspended('leaving', Date.now()) === 'listed', 1000, 'seed');
    const resyncs = await eventCount(metrics, 'resync');
    const desyncs = await eventCount(metrics, 'desync');
    // One MULTI: Redis sends the invalidations of all of it in one message, so they form one batch.
    await writer
      .multi()
      .del('suspended_user:leaving')
      .set('suspended_user:forever', 'true')
      .set('blocked_ip:198.51.100.7', 'true', 'PX', 600_000)
      .hset('user_risk:hashed', 'score', '0.3')
      .pexpire('user_risk:hashed', 600_000)
      .set('user_risk:plain', '0.6')
      .rpush('user_risk:listy', 'not a score')
      .hset('user_risk:no-score', 'other', '1')
      .del('user_risk:was-hash')
      .hset('user_risk:was-hash', 'score', '0.1')
      .exec();
    await eventually(() => store.liveRisk('listy', Date.now()) !== undefined, 1000, 'batch applied');
    const now = Date.now();
    expect(store.userSuspended('leaving', now)).toBe('clear');
    expect(store.userSuspended('forever', now)).toBe('listed');
    expect(store.ipBlocked('198.51.100.7', now)).toBe('listed');
    expect(store.liveRisk('hashed', now)).toBe(0.3);
    expect(store.liveRisk('plain', now)).toBe(0.6);
    // A list holds no score: it counts as the highest risk, as the snapshot reads it.
    expect(store.liveRisk('listy', now)).toBe(1);
    // A hash without a score field is not a risk entry.
    expect(store.liveRisk('no-score', now)).toBeUndefined();
    // A plain string replaced by a hash: the hash's score.
    expect(store.liveRisk('was-hash', now)).toBe(0.1);
    // The TTLs came with the batch: none for the plain SET, ~10 min for the PX and PEXPIRE ones.
    const listing = store.inspect(now, 1000);
    const ttl = (rows: readonly { id: string; ttl_s: number | null }[], id: string) => rows.find((e) => e.id === id)?.ttl_s;
    expect(ttl(listing.suspended, 'forever')).toBeNull();
    expect(ttl(listing.blocked_ips, '198.51.100.7')).toBeGreaterThan(590);
    expect(ttl(listing.blocked_ips, '198.51.100.7')).toBeLessThanOrEqual(600);
    expect(ttl(listing.risk, 'hashed')).toBeGreaterThan(590);
    expect(ttl(listing.risk, 'plain')).toBeNull();
    expect(store.synced).toBe(true);
    expect(await eventCount(metrics, 'desync')).toBe(desyncs);
    expect(await eventCount(metrics, 'resync')).toBe(resyncs);
  });

  it('a burst larger than one read chunk lands whole, with no resync', async () => {
    const resyncs = await eventCount(metrics, 'resync');
    const p = writer.pipeline();
    for (let i = 0; i < 3000; i++) p.set(`blocked_ip:10.9.${i >> 8}.${i & 255}`, 'true', 'EX', 600);
    await p.exec();
    const all = Array.from({ length: 3000 }, (_, i) => `10.9.${i >> 8}.${i & 255}`);
    await eventually(() => all.every((ip) => store.ipBlocked(ip, Date.now()) === 'listed'), 3000, 'the whole burst');
    expect(store.synced).toBe(true);
    expect(await eventCount(metrics, 'resync')).toBe(resyncs);
  });

  it('an address listed under two spellings stays blocked while either key holds it, through re-reads and a full resync', async () => {
    // A marker in the same MULTI arrives in the same invalidation batch: seeing it means the batch landed.
    let marks = 0;
    const landed = async (m: ReturnType<Redis['multi']>) => {
      const mark = `spelling-mark-${++marks}`;
      await m.set(`suspended_user:${mark}`, 'true', 'EX', 600).exec();
      await eventually(() => store.userSuspended(mark, Date.now()) === 'listed', 3000, `batch ${marks} applied`);
    };
    const hourLater = () => Date.now() + 3_600_000;
    // Another tool writes the mapped form with a long TTL; the dotted one, shorter, comes last.
    await landed(writer.multi().set('blocked_ip:::ffff:203.0.113.9', 'true', 'EX', 86_400).set('blocked_ip:203.0.113.9', 'true', 'EX', 60));
    expect(store.ipBlocked('203.0.113.9', hourLater())).toBe('listed');
    // Deleting one spelling leaves the other's block.
    await landed(writer.multi().del('blocked_ip:203.0.113.9'));
    expect(store.ipBlocked('203.0.113.9', Date.now())).toBe('listed');
    expect(store.ipBlocked('203.0.113.9', hourLater())).toBe('listed');
    // A sidecar that starts now reads both spellings from the snapshot, the short one last in its bucket.
    await writer.set('blocked_ip:203.0.113.9', 'true', 'EX', 60);
    const fresh = (await openStore(redisConfig(redis.url))).store as RedisStateStore;
    try {
      await eventually(() => fresh.synced, 5000, 'second sidecar in sync');
      expect(fresh.ipBlocked('203.0.113.9', hourLater())).toBe('listed');
    } finally {
      await fresh.close();
    }
    // Both gone: clear.
    await landed(writer.multi().del('blocked_ip:::ffff:203.0.113.9').del('blocked_ip:203.0.113.9'));
    expect(store.ipBlocked('203.0.113.9', Date.now())).toBe('clear');
  });
});
