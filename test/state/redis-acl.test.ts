import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startRedis, type RedisProcess } from '../helpers/redis.js';
import type { Metrics } from '../../src/observability/metrics.js';
import type { RedisStateStore, StateStore } from '../../src/state/index.js';
import { openStore, redisConfig } from './fixtures.js';
import { waitFor } from '../helpers/server.js';

/** The least-privilege ACL documented in the README: keep the two in step. */
const ACL = [
  'on', '>s3cret', 'resetchannels', '&__redis__:invalidate',
  '~zt:suspended_user:*', '~zt:blocked_ip:*', '~zt:blocked_cidr:*', '~zt:user_risk:*', '~zt:auth_failures:*', '~zt:security_alerts', '~zt:zt_mirror:*',
  '+ping', '+info', '+scan', '+pttl', '+pexpiretime', '+hget', '+get', '+subscribe',
  '+client|id', '+client|setname', '+client|tracking', '+client|trackinginfo',
  '+set', '+del', '+zadd', '+zremrangebyscore', '+zcard', '+pexpire', '+lpush', '+ltrim', '+expire', '+hset', '+persist', '+multi', '+exec',
  '+eval', '+evalsha', '+time', '+type', '+setrange', '+strlen', '+getrange', '+rpush', '+llen', '+lrange', '+lindex',
];

describe('RedisStateStore with a least-privilege ACL user', () => {
  let redis: RedisProcess;
  let store: StateStore;
  let metrics: Metrics;
  let url: string;
  beforeAll(async () => {
    redis = await startRedis();
    await redis.cli('ACL', 'SETUSER', 'zt-authz', ...ACL);
    // Listed before the first sync, so its snapshot reads a key (PEXPIRETIME) under the ACL.
    await redis.cli('SET', 'zt:blocked_ip:198.51.100.1', 'true', 'EX', '600');
    url = `redis://zt-authz:s3cret@127.0.0.1:${redis.port}`;
    ({ store, metrics } = await openStore(redisConfig(url, { remediation: { threshold: 2 } }, { key_prefix: 'zt:' })));
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  it('mirrors, remediates and writes with nothing denied', async () => {
    // start() returns after a bound even when not yet in sync: wait for the sync, not the clock.
    await eventually(() => store.health().ready && store.health().connected, 15_000, 'first sync');
    expect(store.health()).toMatchObject({ ready: true, connected: true });
    await redis.cli('SET', 'zt:suspended_user:x', 'true');
    await eventually(() => store.userSuspended('x', Date.now()) === 'listed', 10_000, 'propagation');
    store.recordAuthFailure('192.0.2.1', Date.now());
    store.recordAuthFailure('192.0.2.1', Date.now());
    await eventually(() => store.ipBlocked('192.0.2.1', Date.now()) === 'listed', 2000, 'auto block');
    await store.setRisk('x', 0.5, 60);
    await store.suspendUser('y', 10, 'test');
    expect((await redis.cli('EXISTS', 'zt:blocked_ip:192.0.2.1')).trim()).toBe('1');
    expect(store.ipBlocked('198.51.100.1', Date.now())).toBe('listed');
    expect((await redis.cli('ACL', 'LOG')).trim()).toBe('');
  });

  it("a second sidecar catches up from the first one's snapshot and its keeper's log with nothing denied", async () => {
    // The keeper appends to its log only once a reader arrives; this write must come through it.
    await redis.cli('SET', 'zt:suspended_user:after-build', 'true');
    const { store: second } = await openStore(redisConfig(url, {}, { key_prefix: 'zt:' }));
    try {
      const s = second as RedisStateStore;
      await eventually(() => s.synced, 15_000, 'second sidecar in sync');
      expect(s.lastSnapshotSource).toBe('shared');
      expect(s.lastLogKeys).toBeGreaterThanOrEqual(1);
      expect(s.userSuspended('after-build', Date.now())).toBe('listed');
    } finally {
      await second.close();
    }
    expect((await redis.cli('ACL', 'LOG')).trim()).toBe('');
  });

  it('persistence check: an ACL user is not sent CONFIG GET; with AOF off the mode reads unknown', async () => {
    const modes = async () => Object.fromEntries((await metrics.stateRedisPersistence.get()).values.map((v) => [String(v.labels.mode), v.value]));
    await waitFor(async () => (await modes()).unknown === 1, 10_000, 'persistence gauge');
    expect(await modes()).toEqual({ none: 0, unknown: 1, rdb: 0, aof: 0 });
    expect((await redis.cli('ACL', 'LOG')).trim()).toBe('');
  });
});
