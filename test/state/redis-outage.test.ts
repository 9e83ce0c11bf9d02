import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startRedis, type RedisProcess } from '../helpers/redis.js';
import type { StateStore } from '../../src/state/index.js';
import { eventCount, openStore, plainClient, redisConfig } from './fixtures.js';

const POLICY = {
  on_unavailable: { suspended_users: 'fail_static', blocked_ips: 'fail_static', user_risk: 'fail_closed' },
  max_staleness_s: 30,
};

/**
 * Calls the hot path continuously (as request traffic would) and counts every answer that would
 * let a listed subject through. The methods are synchronous, so a hang would stall this loop.
 */
function hammer(store: StateStore) {
  const counts = { calls: 0, clearForListed: 0, lastTickMs: Date.now() };
  const timer = setInterval(() => {
    const now = Date.now();
    counts.lastTickMs = now;
    for (let i = 0; i < 200; i++) {
      counts.calls++;
      if (store.userSuspended('mallory', now) !== 'listed') counts.clearForListed++;
      if (store.ipBlocked('192.0.2.66', now) !== 'listed') counts.clearForListed++;
      if (store.ipBlocked('192.0.2.200', now) !== 'listed') counts.clearForListed++;
    }
  }, 1);
  return { counts, stop: () => clearInterval(timer) };
}

async function elapsed(p: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const t = Date.now();
  try {
    await p;
    return { ms: Date.now() - t, error: undefined };
  } catch (error) {
    return { ms: Date.now() - t, error };
  }
}

describe('RedisStateStore when Redis fails', () => {
  let redis: RedisProcess | undefined;
  let store: StateStore | undefined;
  afterEach(async () => {
    await store?.close();
    await redis?.stop();
    store = undefined;
    redis = undefined;
  });

  /** With AOF (fsync always) a SIGKILLed Redis comes back with its data, as a production one must. */
  async function seeded(persistent = false) {
    redis = await startRedis(persistent ? { extraArgs: ['--appendonly', 'yes', '--appendfsync', 'always'] } : {});
    const opened = await openStore(redisConfig(redis.url, POLICY));
    store = opened.store;
    await redis.cli('SET', 'suspended_user:mallory', 'true', 'EX', '3600');
    await redis.cli('SET', 'blocked_ip:192.0.2.66', 'true', 'EX', '1800');
    await redis.cli('SET', 'blocked_cidr:192.0.2.128/25', 'true', 'EX', '1800');
    await redis.cli('SET', 'suspended_user:shortlived', 'true', 'PX', '1500');
    await redis.cli('HSET', 'user_risk:trent', 'score', '0.8');
    const s = store;
    await eventually(() => s.userSuspended('shortlived', Date.now()) === 'listed' && s.liveRisk('trent', Date.now()) === 0.8, 2000, 'seed');
    return { store: s, redis, metrics: opened.metrics };
  }

  it('SIGKILL: listed stays denied, fail_closed reports unavailable, nothing hangs, restart resyncs by itself', async () => {
    const { store: s, redis: r, metrics } = await seeded(true);
    const load = hammer(s);
    try {
      await r.kill('SIGKILL');
      // fail_closed list: unknown users become 'unavailable' once the mirror is out of sync.
      await eventually(() => s.liveRisk('nobody', Date.now()) === 'unavailable', 3000, 'fail_closed after the bound');
      // Known entries still win, whatever the policy.
      expect(s.liveRisk('trent', Date.now())).toBe(0.8);
      // fail_static within max_staleness: last known state, so an unknown user is clear.
      expect(s.userSuspended('nobody', Date.now())).toBe('clear');
      expect(s.health()).toMatchObject({ connected: false, ready: true });

      // Admin writes reject (no offline queue) instead of waiting for Redis.
      const w = await elapsed(s.suspendUser('eve', 60));
      expect(w.error).toBeInstanceOf(Error);
      expect(w.ms).toBeLessThan(2000);

      // Local expiry keeps working without Redis.
      await eventually(() => s.userSuspended('shortlived', Date.now()) === 'clear', 3000, 'local expiry');
      const ageBefore = s.health().mirrorAgeMs;
      await new Promise((res) => setTimeout(res, 300));
      expect(s.health().mirrorAgeMs).toBeGreaterThan(ageBefore);

      const resyncsBefore = await eventCount(metrics, 'resync');
      await r.restart();
      // Redis is back with its data; what is written now is written while we are still away.
      await r.cli('SET', 'suspended_user:oscar', 'true', 'EX', '3600');
      await r.cli('DEL', 'user_risk:trent');
      await eventually(() => s.health().connected, 10_000, 'reconnect');
      await eventually(() => s.userSuspended('oscar', Date.now()) === 'listed', 5000, 'write made while away');
      await eventually(() => s.liveRisk('nobody', Date.now()) === undefined, 5000, 'fail_closed list trusted again');
      // trent's risk was removed while we were away: the resync replaced the mirror.
      await eventually(() => s.liveRisk('trent', Date.now()) === undefined, 5000, 'removal made while away');
      expect(await eventCount(metrics, 'resync')).toBeGreaterThan(resyncsBefore);
      // And invalidations flow again.
      await r.cli('SET', 'suspended_user:peggy', 'true');
      await eventually(() => s.userSuspended('peggy', Date.now()) === 'listed', 1000, 'invalidation after recovery');
    } finally {
      load.stop();
    }
    expect(load.counts.calls).toBeGreaterThan(10_000);
    expect(load.counts.clearForListed).toBe(0);
  });

  it('SIGSTOP (slow Redis): same guarantees, commands time out, SIGCONT recovers', async () => {
    const { store: s, redis: r } = await seeded();
    const load = hammer(s);
    try {
      r.pause();
      await eventually(() => s.liveRisk('nobody', Date.now()) === 'unavailable', 3000, 'fail_closed after the bound');
      expect(s.health().connected).toBe(false);
      expect(s.userSuspended('nobody', Date.now())).toBe('clear');
      const w = await elapsed(s.blockIp('198.51.100.1', 60));
      expect(w.error).toBeInstanceOf(Error);
      expect(w.ms).toBeLessThan(2000);
      // Keep it stopped past several heartbeats, so the stalled connections get recycled.
      await new Promise((res) => setTimeout(res, 1500));
      r.resume();
      await eventually(() => s.health().connected, 10_000, 'recovery');
      await eventually(() => s.liveRisk('nobody', Date.now()) === undefined, 5000, 'trusted again');
      const writer = plainClient(r.url);
      await writer.connect();
      await writer.set('suspended_user:victor', 'true', 'EX', 60);
      writer.disconnect();
      await eventually(() => s.userSuspended('victor', Date.now()) === 'listed', 1000, 'invalidation after SIGCONT');
    } finally {
      load.stop();
      r.resume();
    }
    expect(load.counts.clearForListed).toBe(0);
  });

  it('fail_static fails closed once the mirror is older than max_staleness_s, but listed still wins', async () => {
    redis = await startRedis();
    ({ store } = await openStore(redisConfig(redis.url, { max_staleness_s: 1 })));
    const s = store;
    await redis.cli('SET', 'suspended_user:mallory', 'true');
    await eventually(() => s.userSuspended('mallory', Date.now()) === 'listed', 1000, 'seed');
    await redis.kill('SIGKILL');
    expect(s.userSuspended('nobody', Date.now())).toBe('clear');
    await eventually(() => s.userSuspended('nobody', Date.now()) === 'unavailable', 3000, 'staleness bound');
    expect(s.ipBlocked('192.0.2.1', Date.now())).toBe('unavailable');
    expect(s.userSuspended('mallory', Date.now())).toBe('listed');
    expect(s.health().mirrorAgeMs).toBeGreaterThan(1000);
  });

  it('starts without Redis: not ready, lists unavailable, then catches up when Redis appears', async () => {
    redis = await startRedis();
    const port = redis.port;
    await redis.kill('SIGKILL');
    const t = Date.now();
    ({ store } = await openStore(redisConfig(`redis://127.0.0.1:${port}`)));
    expect(Date.now() - t).toBeLessThan(5000);
    const s = store;
    expect(s.health()).toMatchObject({ ready: false, connected: false });
    expect(s.userSuspended('anyone', Date.now())).toBe('unavailable');
    expect(s.ipBlocked('192.0.2.1', Date.now())).toBe('unavailable');
    expect(s.liveRisk('anyone', Date.now())).toBe('unavailable');
    await redis.restart();
    await eventually(() => s.health().ready && s.health().connected, 10_000, 'first sync');
    expect(s.userSuspended('anyone', Date.now())).toBe('clear');
  });
});
