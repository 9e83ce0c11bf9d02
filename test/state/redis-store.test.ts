import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { eventually, startRedis, type RedisProcess } from '../helpers/redis.js';
import type { StateStore } from '../../src/state/index.js';
import { openStore, plainClient, redisConfig } from './fixtures.js';

/** Writes by a separate client must reach the mirror well within this (the 100 ms p99 target is benchmarked). */
const BOUND_MS = 1000;

describe('RedisStateStore mirror', () => {
  let redis: RedisProcess;
  let store: StateStore;
  let writer: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    ({ store } = await openStore(redisConfig(redis.url, {}, { key_prefix: 'zt:' })));
    writer = plainClient(redis.url);
    await writer.connect();
  });
  afterAll(async () => {
    await store?.close();
    writer?.disconnect();
    await redis?.stop();
  });

  it('is ready and connected after start', () => {
    const h = store.health();
    expect(h).toMatchObject({ backend: 'redis', connected: true, ready: true });
    expect(h.mirrorAgeMs).toBeLessThan(5000);
  });

  it('enforces a suspension written by another client, then its removal', async () => {
    const now = () => Date.now();
    expect(store.userSuspended('bob', now())).toBe('clear');
    await writer.set('zt:suspended_user:bob', 'true', 'EX', 60);
    await eventually(() => store.userSuspended('bob', now()) === 'listed', BOUND_MS, 'suspension');
    await writer.del('zt:suspended_user:bob');
    await eventually(() => store.userSuspended('bob', now()) === 'clear', BOUND_MS, 'unsuspension');
  });

  it('treats any value as listed and ignores keys without the prefix', async () => {
    await writer.set('zt:suspended_user:carol', 'yes-any-value');
    await writer.set('suspended_user:dave', 'true');
    await eventually(() => store.userSuspended('carol', Date.now()) === 'listed', BOUND_MS, 'carol');
    expect(store.userSuspended('dave', Date.now())).toBe('clear');
  });

  it('honours TTL expiry', async () => {
    await writer.set('zt:blocked_ip:198.51.100.7', 'true', 'PX', 300);
    await eventually(() => store.ipBlocked('198.51.100.7', Date.now()) === 'listed', BOUND_MS, 'block');
    await eventually(() => store.ipBlocked('198.51.100.7', Date.now()) === 'clear', 300 + BOUND_MS, 'expiry');
  });

  it('blocks IPv4 and IPv6 CIDRs, including IPv4-mapped IPv6 clients', async () => {
    await writer.set('zt:blocked_cidr:10.20.0.0/16', 'true', 'EX', 60);
    await writer.set('zt:blocked_cidr:2001:DB8:AB::/48', 'true', 'EX', 60);
    await eventually(() => store.ipBlocked('10.20.3.4', Date.now()) === 'listed', BOUND_MS, 'v4 cidr');
    await eventually(() => store.ipBlocked('2001:db8:ab:ffff::1', Date.now()) === 'listed', BOUND_MS, 'v6 cidr');
    expect(store.ipBlocked('::ffff:10.20.200.1', Date.now())).toBe('listed');
    expect(store.ipBlocked('10.21.0.1', Date.now())).toBe('clear');
    expect(store.ipBlocked('2001:db8:ac::1', Date.now())).toBe('clear');
    await writer.del('zt:blocked_cidr:10.20.0.0/16');
    await eventually(() => store.ipBlocked('10.20.3.4', Date.now()) === 'clear', BOUND_MS, 'cidr removal');
  });

  it('matches exact IPv6 blocks whatever the spelling', async () => {
    await writer.set('zt:blocked_ip:2001:0DB8:0000:0000:0000:0000:0000:0042', 'true', 'EX', 60);
    await eventually(() => store.ipBlocked('2001:db8::42', Date.now()) === 'listed', BOUND_MS, 'v6 exact');
  });

  it('mirrors user_risk scores with their TTL', async () => {
    expect(store.liveRisk('erin', Date.now())).toBeUndefined();
    await writer.hset('zt:user_risk:erin', 'score', '0.9');
    await eventually(() => store.liveRisk('erin', Date.now()) === 0.9, BOUND_MS, 'risk');
    await writer.hset('zt:user_risk:erin', 'score', '0.2');
    await eventually(() => store.liveRisk('erin', Date.now()) === 0.2, BOUND_MS, 'risk update');
    await writer.pexpire('zt:user_risk:erin', 200);
    await eventually(() => store.liveRisk('erin', Date.now()) === undefined, 200 + BOUND_MS, 'risk expiry');
    await writer.set('zt:user_risk:frank', 'garbage');
    await eventually(() => store.liveRisk('frank', Date.now()) === 1, BOUND_MS, 'unparsable risk counts as maximal');
  });

  it('resyncs everything after FLUSHALL', async () => {
    await writer.set('zt:suspended_user:gina', 'true');
    await eventually(() => store.userSuspended('gina', Date.now()) === 'listed', BOUND_MS, 'gina');
    await writer.flushall();
    await eventually(() => store.userSuspended('gina', Date.now()) === 'clear', BOUND_MS, 'flush');
  });

  it('admin writes land in Redis with the guides\' key names and are enforced locally at once', async () => {
    await store.suspendUser('henry', 120, 'phishing');
    expect(store.userSuspended('henry', Date.now())).toBe('listed');
    expect(await writer.get('zt:suspended_user:henry')).toBe('true');
    expect(await writer.ttl('zt:suspended_user:henry')).toBeGreaterThan(100);
    await store.blockIp('203.0.113.0/24', 60);
    expect(store.ipBlocked('203.0.113.9', Date.now())).toBe('listed');
    expect(await writer.exists('zt:blocked_cidr:203.0.113.0/24')).toBe(1);
    await store.setRisk('henry', 0.75);
    expect(await writer.hget('zt:user_risk:henry', 'score')).toBe('0.75');
    expect(await writer.ttl('zt:user_risk:henry')).toBe(-1);
    const audit = (await writer.lrange('zt:security_alerts', 0, -1)).map((s) => JSON.parse(s) as { type: string; reason?: string });
    expect(audit.find((a) => a.type === 'admin_suspend')?.reason).toBe('phishing');
    await store.unsuspendUser('henry');
    await store.unblockIp('203.0.113.0/24');
    expect(store.userSuspended('henry', Date.now())).toBe('clear');
    expect(store.ipBlocked('203.0.113.9', Date.now())).toBe('clear');
    await expect(store.blockIp('300.1.1.1', 60)).rejects.toThrow(/invalid IP/);
  });

  it('picks up keys written before start (initial SCAN)', async () => {
    await writer.set('zt:suspended_user:early', 'true', 'EX', 60);
    await writer.hset('zt:user_risk:early', 'score', '0.6');
    const { store: second } = await openStore(redisConfig(redis.url, {}, { key_prefix: 'zt:' }));
    try {
      expect(second.userSuspended('early', Date.now())).toBe('listed');
      expect(second.liveRisk('early', Date.now())).toBe(0.6);
    } finally {
      await second.close();
    }
  });
});
