import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startRedis, startRedisSentinel, type RedisProcess, type SentinelProcess } from '../helpers/redis.js';
import { stateSchema } from '../../src/config/schema/state.js';
import type { StateStore } from '../../src/state/index.js';
import { openStore } from './fixtures.js';

describe('RedisStateStore behind Redis Sentinel', () => {
  let master: RedisProcess;
  let replica: RedisProcess;
  let sentinel: SentinelProcess;
  let store: StateStore;

  beforeAll(async () => {
    master = await startRedis();
    replica = await startRedis({ extraArgs: ['--replicaof', '127.0.0.1', String(master.port)] });
    sentinel = await startRedisSentinel(master.port);
    const cfg = stateSchema.parse({
      backend: 'redis',
      redis: { sentinel: { name: 'mymaster', sentinels: [{ host: '127.0.0.1', port: sentinel.port }] }, heartbeat_interval_ms: 200 },
    });
    ({ store } = await openStore(cfg));
  });
  afterAll(async () => {
    await store?.close();
    await sentinel?.stop();
    await replica?.stop();
    await master?.stop();
  });

  it('mirrors the master found through Sentinel', async () => {
    // start() returns after a bound even when not yet in sync; on a busy machine the first sync
    // through Sentinel can take longer, so wait for it rather than assume it.
    await eventually(() => store.health().ready && store.health().connected, 15_000, 'first sync through Sentinel');
    expect(store.health()).toMatchObject({ ready: true, connected: true });
    await master.cli('SET', 'suspended_user:sam', 'true', 'EX', '600');
    await eventually(() => store.userSuspended('sam', Date.now()) === 'listed', 10_000, 'propagation');
  });

  it('follows a failover to the promoted replica, keeping listed users denied meanwhile', async () => {
    // Replication is asynchronous: only kill the master once the replica has the suspension.
    const until = Date.now() + 10_000;
    while ((await replica.cli('GET', 'suspended_user:sam')).trim() !== 'true') {
      if (Date.now() > until) throw new Error('replica never caught up');
      await new Promise((r) => setTimeout(r, 50));
    }
    await master.kill('SIGKILL');
    await eventually(() => !store.health().connected, 15_000, 'outage noticed');
    expect(store.userSuspended('sam', Date.now())).toBe('listed');
    // Sentinel notices (1 s down-after) and promotes the replica; the store reconnects there and resyncs.
    const deadline = Date.now() + 45_000;
    while (!(await replica.cli('ROLE')).startsWith('master')) {
      if (Date.now() > deadline) throw new Error('replica never promoted');
      await new Promise((r) => setTimeout(r, 100));
    }
    await eventually(() => store.health().connected, 30_000, 'reconnect to promoted replica');
    await replica.cli('SET', 'suspended_user:tina', 'true', 'EX', '600');
    await eventually(() => store.userSuspended('tina', Date.now()) === 'listed', 10_000, 'invalidation from new master');
    expect(store.userSuspended('sam', Date.now())).toBe('listed');
  }, 120_000);
});
