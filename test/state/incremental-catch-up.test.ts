import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { eventually, startRedis, type RedisProcess } from '../helpers/redis.js';
import { RedisStateStore } from '../../src/state/index.js';
import { changedBuckets, parseIndex } from '../../src/state/snapshot-chunks.js';
import { packSnapshot, scanNode } from '../../src/state/snapshot.js';
import { openStore, redisConfig } from './fixtures.js';

/**
 * A sidecar that already holds a snapshot catches up after a Redis restart or failover by reading
 * only the buckets whose digest changed, then re-reading every key its mirror changed since. These
 * tests check that it ends exactly where a full read would, including the case only the re-read
 * covers: a restart that loses writes the sidecars had already applied (an RDB older than them),
 * so the new snapshot equals the old one and no bucket differs, yet the mirrors do.
 */
const SIDECARS = 3;
const IPS = 20_000;
const ip = (i: number) => `10.7.${i >> 8}.${i & 255}`;

function conn(url: string): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: 1 });
  c.on('error', () => undefined);
  return c;
}

async function seed(c: Redis): Promise<void> {
  const p = c.pipeline();
  for (let i = 0; i < IPS; i++) p.set(`blocked_ip:${ip(i)}`, 'true', 'EX', 3600);
  p.set('suspended_user:mallory', 'true', 'EX', 3600);
  p.set('suspended_user:kept-in-rdb', 'true', 'EX', 3600);
  p.set('blocked_cidr:198.51.100.0/24', 'true', 'EX', 3600);
  // One address listed under two spellings: one mirror entry, so both must share a bucket.
  p.set('blocked_ip:10.8.8.8', 'true', 'EX', 3600);
  p.set('blocked_ip:::ffff:10.8.8.8', 'true', 'EX', 3600);
  p.hset('user_risk:trent', 'score', '0.8');
  await p.exec();
}

describe('incremental catch-up', () => {
  let redis: RedisProcess | undefined;
  let stores: RedisStateStore[] = [];
  const open: Redis[] = [];
  afterEach(async () => {
    for (const c of open.splice(0)) c.disconnect();
    await Promise.all(stores.map((s) => s.close()));
    await redis?.stop();
    stores = [];
    redis = undefined;
  });

  async function fleet(extraArgs: string[]): Promise<{ r: RedisProcess; c: Redis }> {
    const r = (redis = await startRedis({ extraArgs }));
    const c = conn(r.url);
    open.push(c);
    await seed(c);
    const opened = await Promise.all(Array.from({ length: SIDECARS }, () => openStore(redisConfig(r.url))));
    stores = opened.map((o) => o.store as RedisStateStore);
    await eventually(() => stores.every((s) => s.synced), 15_000, 'fleet in sync');
    return { r, c };
  }

  it('digests: an unchanged Redis scans to the same buckets, one write changes one bucket, and an inexact scan is never compared', async () => {
    const r = (redis = await startRedis());
    const c = conn(r.url);
    open.push(c);
    await seed(c);
    const index = async (x: Redis) => {
      const built = await scanNode(x, '', () => true);
      const packed = await packSnapshot(built.pages, built.exact);
      return parseIndex(packed, packed.length);
    };
    const a = await index(c);
    expect(a.exact).toBe(true);
    expect(a.buckets).toBe(256);
    expect(a.entries).toBe(IPS + 6);
    expect(changedBuckets(a, await index(c))).toEqual([]);
    await c.del(`blocked_ip:${ip(4242)}`);
    expect(changedBuckets(a, await index(c))).toHaveLength(1);
    // Redis 6.2, or an ACL user without PEXPIRETIME: expiries from PTTL drift, so no comparison.
    await r.cli('ACL', 'SETUSER', 'old', 'on', '>pw', '~*', '&*', '+@all', '-pexpiretime');
    const old = conn(`redis://old:pw@127.0.0.1:${r.port}`);
    open.push(old);
    const inexact = await index(old);
    expect(inexact.exact).toBe(false);
    expect(changedBuckets(a, inexact)).toBeUndefined();
    expect(inexact.entries).toBe(IPS + 5);
  }, 60_000);

  it('after a restart with writes made while the fleet was away, the readers read only what changed and match Redis exactly', async () => {
    const { r } = await fleet(['--appendonly', 'yes', '--appendfsync', 'always']);
    // Applied through tracking before the restart: these keys differ from every sidecar's base.
    const c = open[0] as Redis;
    await c.set('suspended_user:before', 'true', 'EX', 600);
    await c.del(`blocked_ip:${ip(7)}`);
    await eventually(() => stores.every((s) => s.userSuspended('before', Date.now()) === 'listed' && s.ipBlocked(ip(7), Date.now()) === 'clear'), 5000, 'writes applied');
    await r.kill('SIGKILL');
    await eventually(() => stores.every((s) => !s.synced), 5000, 'outage noticed');
    // Written as other tools write them, while no sidecar can reach Redis.
    await r.offline(async (cli) => {
      await cli('SET', 'suspended_user:bob', 'true', 'EX', '3600');
      await cli('DEL', 'suspended_user:mallory');
      await cli('DEL', `blocked_ip:${ip(100)}`);
      await cli('SET', `blocked_ip:${ip(IPS + 1)}`, 'true', 'EX', '3600');
      await cli('SET', 'blocked_ip:::ffff:10.9.9.9', 'true', 'EX', '3600');
      await cli('HSET', 'user_risk:trent', 'score', '0.3');
      await cli('DEL', 'blocked_cidr:198.51.100.0/24');
      // Replacing the bucket of the deleted spelling must not drop the address the other keeps.
      await cli('DEL', 'blocked_ip:::ffff:10.8.8.8');
    });
    await r.restart();
    await eventually(() => stores.every((s) => s.synced), 20_000, 'fleet back in sync');
    const sources = stores.map((s) => s.lastSnapshotSource);

    expect(sources).toContain('incremental');
    const now = Date.now();
    for (const s of stores) {
      expect(s.userSuspended('bob', now)).toBe('listed');
      expect(s.userSuspended('mallory', now)).toBe('clear');
      expect(s.userSuspended('before', now)).toBe('listed');
      expect(s.userSuspended('kept-in-rdb', now)).toBe('listed');
      expect(s.ipBlocked(ip(7), now)).toBe('clear');
      expect(s.ipBlocked(ip(100), now)).toBe('clear');
      expect(s.ipBlocked(ip(IPS + 1), now)).toBe('listed');
      expect(s.ipBlocked('10.9.9.9', now)).toBe('listed');
      expect(s.ipBlocked('10.8.8.8', now)).toBe('listed');
      expect(s.ipBlocked('198.51.100.9', now)).toBe('clear');
      expect(s.liveRisk('trent', now)).toBe(0.3);
      // Every other listed address is still listed.
      const missing = Array.from({ length: IPS }, (_, i) => i).filter((i) => i !== 7 && i !== 100 && s.ipBlocked(ip(i), now) !== 'listed');
      expect(missing).toEqual([]);
    }
  }, 90_000);

  it('a restart that loses writes the sidecars had applied (an older RDB) leaves no bucket changed, and the re-read of what they changed still puts them back in step', async () => {
    const { r } = await fleet(['--appendonly', 'no']);
    const c = open[0] as Redis;
    await c.save();
    // Applied by every sidecar, then lost: the RDB was written before them.
    await c.set('suspended_user:lost', 'true', 'EX', 600);
    await c.del('suspended_user:kept-in-rdb');
    await c.del(`blocked_ip:${ip(9)}`);
    await eventually(
      () => stores.every((s) => s.userSuspended('lost', Date.now()) === 'listed' && s.userSuspended('kept-in-rdb', Date.now()) === 'clear' && s.ipBlocked(ip(9), Date.now()) === 'clear'),
      5000,
      'writes applied',
    );
    await r.kill('SIGKILL');
    await eventually(() => stores.every((s) => !s.synced), 5000, 'outage noticed');
    await r.restart();
    await eventually(() => stores.every((s) => s.synced), 20_000, 'fleet back in sync');
    expect(stores.map((s) => s.lastSnapshotSource)).toContain('incremental');
    const now = Date.now();
    for (const s of stores) {
      expect(s.userSuspended('lost', now)).toBe('clear');
      expect(s.userSuspended('kept-in-rdb', now)).toBe('listed');
      expect(s.ipBlocked(ip(9), now)).toBe('listed');
      expect(s.userSuspended('mallory', now)).toBe('listed');
    }
  }, 90_000);
});
