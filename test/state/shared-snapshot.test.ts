import { describe, expect, it } from 'vitest';
import { eventually, startRedis, type RedisProcess } from '../helpers/redis.js';
import { RedisStateStore } from '../../src/state/index.js';
import { openStore, plainClient, redisConfig, stateRig } from './fixtures.js';

/**
 * The resync that a fleet shares (one sidecar builds a snapshot, the others read it) must leave
 * every sidecar exactly where a private full read would: writes made while they were away, and
 * writes racing the build, are all there; a snapshot from before a restart is never used; a
 * listed entry is never answered clear on the way.
 */
const SIDECARS = 3;

describe('shared snapshot resync under faults', () => {
  const rig = stateRig();

  async function fleet(): Promise<{ r: RedisProcess; s: RedisStateStore[] }> {
    // AOF with fsync always: a SIGKILLed Redis comes back with everything it acknowledged.
    const r = (rig.redis = await startRedis({ extraArgs: ['--appendonly', 'yes', '--appendfsync', 'always'] }));
    await r.cli('SET', 'suspended_user:mallory', 'true', 'EX', '3600');
    await r.cli('SET', 'suspended_user:gone-while-away', 'true', 'EX', '3600');
    await r.cli('SET', 'suspended_user:extended-while-away', 'true', 'PX', '4000');
    await r.cli('SET', 'blocked_ip:192.0.2.66', 'true', 'EX', '3600');
    const opened = await Promise.all(Array.from({ length: SIDECARS }, () => openStore(redisConfig(r.url))));
    rig.stores = opened.map((o) => o.store as RedisStateStore);
    await eventually(() => rig.stores.every((s) => s.synced), 10_000, 'fleet in sync');
    for (const s of rig.stores) expect(s.userSuspended('gone-while-away', Date.now())).toBe('listed');
    return { r, s: rig.stores };
  }

  function guard(s: RedisStateStore[]) {
    const bad: string[] = [];
    const t = setInterval(() => {
      const now = Date.now();
      s.forEach((x, i) => {
        if (x.userSuspended('mallory', now) !== 'listed') bad.push(`sidecar ${i} cleared mallory at ${now}`);
        if (x.ipBlocked('192.0.2.66', now) !== 'listed') bad.push(`sidecar ${i} cleared 192.0.2.66 at ${now}`);
      });
    }, 1);
    return { bad, stop: () => clearInterval(t) };
  }

  it('SIGKILL and restart: every sidecar catches up with what changed while it was away, and never from the pre-restart snapshot', async () => {
    const { r, s } = await fleet();
    const g = guard(s);
    try {
      await r.kill('SIGKILL');
      await eventually(() => s.every((x) => !x.synced), 5000, 'outage noticed');
      await r.restart();
      // Written as other tools write them, before the sidecars are back in sync.
      await r.cli('SET', 'suspended_user:bob', 'true', 'EX', '3600');
      await r.cli('DEL', 'suspended_user:gone-while-away');
      await r.cli('PEXPIRE', 'suspended_user:extended-while-away', '3600000');
      await eventually(() => s.every((x) => x.synced), 15_000, 'fleet back in sync');
      await eventually(() => s.every((x) => x.userSuspended('bob', Date.now()) === 'listed'), 5000, 'write made while away');
      await eventually(() => s.every((x) => x.userSuspended('gone-while-away', Date.now()) === 'clear'), 5000, 'removal made while away');
      // Past the old 4 s TTL, the extension made while away still holds everywhere.
      await new Promise((res) => setTimeout(res, 4200));
      for (const x of s) expect(x.userSuspended('extended-while-away', Date.now())).toBe('listed');
      // And a plain redis-cli SET after recovery reaches every sidecar through tracking.
      await r.cli('SET', 'suspended_user:after', 'true', 'EX', '600');
      await eventually(() => s.every((x) => x.userSuspended('after', Date.now()) === 'listed'), 3000, 'redis-cli SET after recovery');
    } finally {
      g.stop();
    }
    expect(g.bad.slice(0, 5)).toEqual([]);
  }, 60_000);

  it('writes racing the shared build end up on every sidecar exactly as in Redis', async () => {
    const { r, s } = await fleet();
    rig.cli = plainClient(r.url);
    await rig.cli.connect();
    const c = rig.cli;
    // Enough keys that a build takes several script calls, so writes land in the middle of it.
    const p = c.pipeline();
    for (let i = 0; i < 20_000; i++) p.set(`blocked_ip:10.1.${i >> 8}.${i & 255}`, 'true', 'EX', 3600);
    await p.exec();
    let writing = true;
    let n = 0;
    const writer = (async () => {
      while (writing) {
        const i = n++;
        await c.set(`suspended_user:racer-${i}`, 'true', 'EX', 600);
        if (i % 3 === 0) await c.del(`suspended_user:racer-${i - 3}`);
        await new Promise((res) => setTimeout(res, 2));
      }
    })();
    // Drop every sidecar's connections at once, as a failover would; they resync together.
    for (const line of ((await c.call('CLIENT', 'LIST')) as string).split('\n')) {
      const id = /id=(\d+) .* name=zt-authz/.exec(line)?.[1];
      if (id !== undefined) await c.call('CLIENT', 'KILL', 'ID', id).catch(() => undefined);
    }
    await eventually(() => s.every((x) => !x.synced), 5000, 'disconnect noticed').catch(() => undefined);
    await eventually(() => s.every((x) => x.synced), 15_000, 'fleet back in sync');
    await new Promise((res) => setTimeout(res, 300));
    writing = false;
    await writer;
    const listed = new Set((await c.keys('suspended_user:racer-*')).map((k) => k.slice('suspended_user:'.length)));
    await eventually(
      () => s.every((x) => Array.from({ length: n }, (_, i) => `racer-${i}`).every((u) => (x.userSuspended(u, Date.now()) === 'listed') === listed.has(u))),
      3000,
      'every sidecar equal to Redis',
    );
    for (const x of s) expect(x.ipBlocked('10.1.78.31', Date.now())).toBe('listed');
    expect(n).toBeGreaterThan(10);
  }, 60_000);

  it('a builder that died holding the lease delays the others by the lease at most', async () => {
    const { r, s } = await fleet();
    await r.kill('SIGKILL');
    await r.restart();
    await r.cli('SET', 'zt_mirror:lease', 'a-sidecar-that-died', 'PX', '3000');
    await r.cli('SET', 'suspended_user:carol', 'true', 'EX', '600');
    await eventually(() => s.every((x) => x.synced && x.userSuspended('carol', Date.now()) === 'listed'), 20_000, 'fleet in sync after the lease expired');
  }, 60_000);
});
