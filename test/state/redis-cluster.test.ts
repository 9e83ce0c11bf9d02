import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { eventually, startRedisCluster, type RedisClusterProcess } from '../helpers/redis.js';
import { stateSchema } from '../../src/config/schema/state.js';
import type { StateStore } from '../../src/state/index.js';
import { admin, openStore } from './fixtures.js';

describe('RedisStateStore on a 3-master Redis Cluster', () => {
  let cluster: RedisClusterProcess;
  let store: StateStore;
  let writer: Cluster;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    writer = new Cluster(cluster.seeds, { redisOptions: { maxRetriesPerRequest: 1 } });
    // Written before start: found by the SCAN of every master.
    for (let i = 0; i < 30; i++) await writer.set(`suspended_user:pre${i}`, 'true', 'EX', 60);
    const cfg = stateSchema.parse({ backend: 'redis', redis: { cluster: { nodes: cluster.seeds }, heartbeat_interval_ms: 200 } });
    ({ store } = await openStore(cfg));
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    writer?.disconnect();
    await cluster?.stop();
  });

  it('mirrors keys from every master at start', () => {
    expect(store.health()).toMatchObject({ backend: 'redis', ready: true, connected: true });
    for (let i = 0; i < 30; i++) expect(store.userSuspended(`pre${i}`, Date.now())).toBe('listed');
  });

  it('receives invalidations from every master', async () => {
    // Enough distinct users that every master owns some of their slots; check that it does.
    const users = Array.from({ length: 30 }, (_, i) => `user${i}`);
    const ranges = (await writer.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    const owners = new Set<number>();
    for (const u of users) {
      const slot = Number(await writer.call('CLUSTER', 'KEYSLOT', `suspended_user:${u}`));
      const range = ranges.find(([from, to]) => slot >= from && slot <= to);
      if (range !== undefined) owners.add(range[2][1]);
    }
    expect(owners).toEqual(new Set(cluster.nodes.map((n) => n.port)));
    for (const u of users) await writer.set(`suspended_user:${u}`, 'true', 'EX', 60);
    await eventually(() => users.every((u) => store.userSuspended(u, Date.now()) === 'listed'), 2000, 'all masters');
    await writer.set('blocked_cidr:10.9.0.0/16', 'true', 'EX', 60);
    await writer.hset('user_risk:user7', 'score', '0.55');
    await eventually(() => store.ipBlocked('10.9.1.1', Date.now()) === 'listed', 1000, 'cidr');
    await eventually(() => store.liveRisk('user7', Date.now()) === 0.55, 1000, 'risk');
    for (const u of users) await writer.del(`suspended_user:${u}`);
    await eventually(() => users.every((u) => store.userSuspended(u, Date.now()) === 'clear'), 2000, 'removal on all masters');
  });

  it('admin writes and auto-remediation work across slots', async () => {
    await store.suspendUser('zed', 60);
    expect(await writer.get('suspended_user:zed')).toBe('true');
    for (let i = 0; i < 5; i++) store.recordAuthFailure('192.0.2.99', Date.now());
    await eventually(() => store.ipBlocked('192.0.2.99', Date.now()) === 'listed', 3000, 'auto block');
    expect(await writer.ttl('blocked_ip:192.0.2.99')).toBeGreaterThan(1700);
    expect(await writer.llen('security_alerts')).toBeGreaterThan(0);
  });

  it('admin CLI given one node URL writes and lists across the cluster', async () => {
    const url = `redis://127.0.0.1:${cluster.nodes[1]?.port}`;
    for (const u of ['cli-a', 'cli-b', 'cli-c', 'cli-d']) expect((await admin('suspend', u, '--ttl', '60', '--redis', url)).code).toBe(0);
    await eventually(() => ['cli-a', 'cli-b', 'cli-c', 'cli-d'].every((u) => store.userSuspended(u, Date.now()) === 'listed'), 1000, 'cli writes');
    const listed = JSON.parse((await admin('list', '--json', '--redis', url)).out) as { id: string }[];
    expect(listed.map((e) => e.id)).toEqual(expect.arrayContaining(['cli-a', 'cli-b', 'cli-c', 'cli-d', 'pre0', 'zed']));
  });
});
