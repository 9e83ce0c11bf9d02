import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { eventually, startRedis, type RedisProcess } from '../helpers/redis.js';
import { waitFor } from '../helpers/server.js';
import { freshSnapshot, packSnapshot, snapshotKeys, type LoadedSnapshot } from '../../src/state/snapshot.js';
import { LOG_MAX_KEYS, SnapshotKeeper, type KeeperDeps } from '../../src/state/snapshot-keeper.js';
import type { RedisStateStore } from '../../src/state/index.js';
import { openStore, plainClient, redisConfig, stateRig } from './fixtures.js';

const KEYS = snapshotKeys('');

/**
 * The sidecar that built the shared snapshot keeps a log of every key written since its build
 * began, so a resync that starts later takes that snapshot plus a re-read of the log instead of
 * waiting for a new build. Each test checks what a reader ends up with against Redis itself.
 */
describe('the snapshot keeper', () => {
  const rig = stateRig();

  async function setup(): Promise<{ r: RedisProcess; c: Redis }> {
    const r = (rig.redis = await startRedis());
    const c = (rig.cli = plainClient(r.url));
    await c.connect();
    return { r, c };
  }

  async function sidecar(r: RedisProcess): Promise<RedisStateStore> {
    const { store } = await openStore(redisConfig(r.url));
    const s = store as RedisStateStore;
    rig.stores.push(s);
    await eventually(() => s.synced, 20_000, 'sidecar in sync');
    return s;
  }

  /** The published snapshot's key, from its meta ("<run> <start> <entries> <bytes> <key>"). */
  async function snapshotKey(c: Redis): Promise<string> {
    const meta = (await c.get(KEYS.meta)) ?? '';
    return meta.split(' ')[4] ?? '';
  }

  it('a later resync reads the same snapshot and its log, and sees the writes made since the build', async () => {
    const { r, c } = await setup();
    await c.set('suspended_user:early', 'true', 'EX', 3600);
    await c.set('blocked_ip:203.0.113.1', 'true', 'EX', 3600);
    const a = await sidecar(r);
    expect(a.lastSnapshotSource).toBe('built');
    const meta = await c.get(KEYS.meta);
    await waitFor(async () => (await c.get(KEYS.logWatermark)) !== null, 10_000, 'the keeper publishing its watermark');

    // After the snapshot began and before the reader exists: the snapshot holds the old values,
    // and the reader's own tracking never sees these writes.
    await c.set('suspended_user:late', 'true', 'EX', 3600);
    await c.del('blocked_ip:203.0.113.1');
    await c.set('blocked_cidr:198.51.100.0/24', 'true', 'EX', 3600);

    const b = await sidecar(r);
    expect(b.lastSnapshotSource).toBe('shared');
    expect(b.lastLogKeys).toBeGreaterThanOrEqual(3);
    expect(await c.get(KEYS.meta)).toBe(meta);
    const now = Date.now();
    expect(b.userSuspended('early', now)).toBe('listed');
    expect(b.userSuspended('late', now)).toBe('listed');
    expect(b.ipBlocked('203.0.113.1', now)).toBe('clear');
    expect(b.ipBlocked('198.51.100.9', now)).toBe('listed');
  }, 60_000);

  it('readers starting while another client writes without pause end up exactly as Redis, all from one build', async () => {
    const { r, c } = await setup();
    const a = await sidecar(r);
    const meta = await c.get(KEYS.meta);
    await waitFor(async () => (await c.get(KEYS.logWatermark)) !== null, 10_000, 'the keeper publishing its watermark');

    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing && written < 1500) {
        const i = written++;
        await c.set(`suspended_user:w${i}`, 'true', 'EX', 3600);
        if (i % 3 === 2) await c.del(`suspended_user:w${i - 1}`);
      }
    })();
    const readers: RedisStateStore[] = [];
    for (let k = 0; k < 3; k++) {
      await waitFor(async () => written >= 100 * (k + 1), 20_000, 'more writes');
      readers.push(await sidecar(r));
    }
    writing = false;
    await writer;

    const listed = new Set((await c.keys('suspended_user:w*')).map((k) => k.slice('suspended_user:'.length)));
    const mismatches = (s: RedisStateStore): number => {
      let n = 0;
      for (let i = 0; i < written; i++) if ((s.userSuspended(`w${i}`, Date.now()) === 'listed') !== listed.has(`w${i}`)) n++;
      return n;
    };
    // Later writes reach everyone through tracking within milliseconds; a write the catch-up
    // missed would never be corrected, so this waits for an event that a miss would never bring.
    await eventually(() => [a, ...readers].every((s) => mismatches(s) === 0), 15_000, 'every mirror equal to Redis');
    for (const s of readers) {
      expect(s.lastSnapshotSource).not.toBe('built');
      expect(s.lastLogKeys).toBeGreaterThan(0);
    }
    expect(await c.get(KEYS.meta)).toBe(meta);
  }, 90_000);

  it('a keeper that closes withdraws its watermark, and the next resync builds its own', async () => {
    const { r, c } = await setup();
    const a = await sidecar(r);
    await waitFor(async () => (await c.get(KEYS.logWatermark)) !== null, 10_000, 'the keeper publishing its watermark');
    await a.close();
    expect(await c.get(KEYS.logWatermark)).toBeNull();
    await c.set('suspended_user:late', 'true', 'EX', 3600);
    const b = await sidecar(r);
    expect(b.lastSnapshotSource).toBe('built');
    expect(b.userSuspended('late', Date.now())).toBe('listed');
  }, 60_000);

  it('a watermark left by a keeper that died is waited on for a bounded time, then a fresh snapshot is built', async () => {
    const { r, c } = await setup();
    const builder = plainClient(r.url);
    await builder.connect();
    try {
      await freshSnapshot(builder, '', KEYS, () => true, (ms) => new Promise((res) => setTimeout(res, ms)), 'a-builder-that-dies');
    } finally {
      builder.disconnect();
    }
    // A watermark that will never move past any reader's start, as a frozen keeper leaves it.
    await c.set(KEYS.logWatermark, `${await snapshotKey(c)} 1 0 ${KEYS.log('gone')}`, 'PX', 60_000);
    await c.set('suspended_user:late', 'true', 'EX', 3600);
    const { store, metrics } = await openStore(redisConfig(r.url));
    const b = store as RedisStateStore;
    rig.stores.push(b);
    await eventually(() => b.synced, 40_000, 'sidecar in sync');
    expect(b.lastSnapshotSource).toBe('built');
    expect(b.userSuspended('late', Date.now())).toBe('listed');
    // It waited the whole bound for the keeper, which is what tells keeper_late from no_keeper.
    const builds = (await metrics.stateSnapshotBuilds.get()).values.map((v) => [v.labels['reason'], v.value]);
    expect(builds).toEqual([['keeper_late', 1]]);
  }, 60_000);

  it('a keeper whose subscriber is cut stops: its watermark never passes the moment tracking broke', async () => {
    const { r, c } = await setup();
    const a = await sidecar(r);
    await waitFor(async () => (await c.get(KEYS.logWatermark)) !== null, 10_000, 'the keeper publishing its watermark');
    const first = await snapshotKey(c);
    const list = await c.client('LIST');
    const sub = /id=(\d+) [^\n]*name=zt-authz-invalidations/.exec(String(list));
    expect(sub).not.toBeNull();
    const [sec, usec] = await c.time();
    const cutUs = Number(sec) * 1e6 + Number(usec);
    await c.client('KILL', 'ID', sub?.[1] as string);
    // Written while the keeper's tracking is down: only a new snapshot or a new keeper covers it.
    await c.set('suspended_user:during', 'true', 'EX', 3600);
    const seen: string[] = [];
    await waitFor(
      async () => {
        const w = await c.get(KEYS.logWatermark);
        if (w !== null) seen.push(w);
        return a.synced && (w === null || !w.startsWith(`${first} `));
      },
      20_000,
      'the keeper of the first snapshot gone, and the sidecar back in sync',
    );
    for (const w of seen) if (w.startsWith(`${first} `)) expect(Number(w.split(' ')[1])).toBeLessThan(cutUs);
    const b = await sidecar(r);
    expect(b.userSuspended('during', Date.now())).toBe('listed');
    expect(a.userSuspended('during', Date.now())).toBe('listed');
  }, 60_000);

  it(`a log past ${LOG_MAX_KEYS} keys is given up, and the next resync builds`, async () => {
    const { r, c } = await setup();
    await sidecar(r);
    await waitFor(async () => (await c.get(KEYS.logWatermark)) !== null, 10_000, 'the keeper publishing its watermark');
    const p = c.pipeline();
    for (let i = 0; i <= LOG_MAX_KEYS; i++) p.set(`blocked_ip:10.0.${i >> 8}.${i & 255}`, 'true', 'EX', 3600);
    await p.exec();
    await waitFor(async () => (await c.get(KEYS.logWatermark)) === null, 10_000, 'the full log withdrawn');
    const b = await sidecar(r);
    expect(b.lastSnapshotSource).toBe('built');
    expect(b.ipBlocked(`10.0.${LOG_MAX_KEYS >> 8}.${LOG_MAX_KEYS & 255}`, Date.now())).toBe('listed');
  }, 60_000);

  /**
   * The two races below are driven through the keeper itself, with a barrier that delivers an
   * invalidation just before its PONG (as Redis does for a write executed before the watermark).
   */
  it('a key dropped because the log is full while a barrier waits stops the keeper before it publishes that watermark', async () => {
    const { r, c } = await setup();
    const conn = plainClient(r.url);
    await conn.connect();
    try {
      await c.set(KEYS.meta, 'run 1 0 0 snap');
      const since = Array.from({ length: LOG_MAX_KEYS }, (_, i) => `suspended_user:filler${i}`);
      let stopped = '';
      const barrierDone: (() => void)[] = [];
      const keeper: SnapshotKeeper = new SnapshotKeeper('snap', since, {
        conn,
        keys: KEYS,
        barrier: async () => {
          keeper.record('suspended_user:victim');
          barrierDone.forEach((f) => f());
          return true;
        },
        intact: () => true,
        onStop: (why) => (stopped = why),
      });
      await new Promise<void>((res) => barrierDone.push(res));
      await keeper.stop('closing');
      expect(stopped).toBe('log_full');
      // No watermark, or one whose log holds the victim: never a log that lacks it.
      const lw = await c.get(KEYS.logWatermark);
      if (lw !== null) expect(await c.lrange(lw.split(' ')[3] ?? '', 0, -1)).toContain('suspended_user:victim');
      expect(lw).toBeNull();
      // Nothing was appended or published after the key was dropped (the stop's withdrawal alone
      // would hide a watermark published a moment earlier).
      expect(await c.keys('zt_mirror:c2log:*')).toEqual([]);
    } finally {
      conn.disconnect();
    }
  }, 30_000);

  it('a log that vanished is not recreated shorter under the same watermark: the keeper stops', async () => {
    const { r, c } = await setup();
    const conn = plainClient(r.url);
    await conn.connect();
    try {
      await c.set(KEYS.meta, 'run 1 0 0 snap');
      let stopped = '';
      const keeper = new SnapshotKeeper('snap', ['suspended_user:a', 'suspended_user:b'], { conn, keys: KEYS, barrier: async () => true, intact: () => true, onStop: (why) => (stopped = why) });
      let first = '';
      await waitFor(async () => (first = (await c.get(KEYS.logWatermark)) ?? '') !== '', 10_000, 'the first watermark');
      const [, w, n, logKey] = first.split(' ');
      expect(Number(n)).toBe(3); // the header and two keys
      expect(await c.lrange(logKey ?? '', 1, -1)).toEqual(['suspended_user:a', 'suspended_user:b']);
      await c.del(logKey ?? '');
      keeper.record('suspended_user:c');
      await c.set(KEYS.arrival, String(Number(w) + 1));
      await waitFor(async () => stopped !== '', 10_000, 'the keeper to stop');
      await keeper.stop('closing');
      expect(stopped).toBe('log_lost');
      expect(await c.get(KEYS.logWatermark)).toBeNull();
      expect(await c.exists(logKey ?? '')).toBe(0);
    } finally {
      conn.disconnect();
    }
  }, 30_000);

  it('a resync that waited longer than the keeper wait for the build to finish still takes the log', async () => {
    const { r, c } = await setup();
    const conn = plainClient(r.url);
    const reader = plainClient(r.url);
    await Promise.all([conn.connect(), reader.connect()]);
    let keeper: SnapshotKeeper | undefined;
    try {
      // Another sidecar holds the lease and began its scan before the reader arrived.
      await c.set(KEYS.lease, 'the-builder', 'PX', 60_000);
      const [sec, usec] = await c.time();
      const startUs = Number(sec) * 1e6 + Number(usec);
      const sleep = (ms: number) => new Promise<void>((res) => setTimeout(res, ms));
      const reading = freshSnapshot(reader, '', KEYS, () => true, sleep, 'the-reader');
      await waitFor(async () => (await c.get(KEYS.arrival)) !== null, 10_000, "the reader's first poll");
      // Longer than a resync waits for a keeper: the build, not the keeper, took this time.
      await sleep(2500);
      const key = await publishByHand(c, startUs);
      keeper = new SnapshotKeeper(key, [], { conn, keys: KEYS, barrier: async () => true, intact: () => true });
      const got = await reading;
      expect(got.source).toBe('shared');
      expect(got.logKeys).toEqual([]);
      expect(await c.get(KEYS.lease)).toBe('the-builder');
    } finally {
      await keeper?.stop('closing');
      conn.disconnect();
      reader.disconnect();
    }
  }, 60_000);

  /**
   * An empty snapshot published as begun at startUs, with the first watermark a builder that keeps
   * a log publishes (3 s, until its keeper's first tick); returns the snapshot's key.
   */
  async function publishByHand(c: Redis, startUs: number): Promise<string> {
    const packed = await packSnapshot([]);
    const key = KEYS.staging('by-hand');
    await c.set(key, packed);
    const run = /run_id:(\w+)/.exec(await c.info('server'))?.[1] ?? '';
    await c.set(KEYS.meta, `${run} ${startUs} 0 ${packed.length} ${key}`);
    await c.set(KEYS.logWatermark, `${key} ${startUs} 1 -`, 'PX', 3000);
    return key;
  }

  /** A reader whose first poll is in, against a snapshot published by hand as begun before it. */
  async function readerWaiting(r: RedisProcess, c: Redis): Promise<{ reader: Redis; reading: ReturnType<typeof freshSnapshot>; key: string }> {
    const reader = plainClient(r.url);
    await reader.connect();
    const [sec, usec] = await c.time();
    const key = await publishByHand(c, Number(sec) * 1e6 + Number(usec));
    const sleep = (ms: number) => new Promise<void>((res) => setTimeout(res, ms));
    const reading = freshSnapshot(reader, '', KEYS, () => true, sleep, 'the-reader');
    await waitFor(async () => (await c.get(KEYS.arrival)) !== null, 10_000, "the reader's first poll");
    return { reader, reading, key };
  }

  /** A keeper with this barrier, started for a reader already waiting on it; `check` sees what the reader got. */
  async function keeperServing(barrier: KeeperDeps['barrier'], since: string[], check: (got: LoadedSnapshot, keeper: SnapshotKeeper, c: Redis) => Promise<void>, onStop?: KeeperDeps['onStop']): Promise<void> {
    const { r, c } = await setup();
    const conn = plainClient(r.url);
    await conn.connect();
    let keeper: SnapshotKeeper | undefined;
    const { reader, reading, key } = await readerWaiting(r, c);
    try {
      keeper = new SnapshotKeeper(key, since, { conn, keys: KEYS, barrier, intact: () => true, ...(onStop === undefined ? {} : { onStop }) });
      await check(await reading, keeper, c);
    } finally {
      // Returns even while an advance never will.
      await keeper?.stop('closing');
      conn.disconnect();
      reader.disconnect();
    }
  }

  it('a keeper whose advance outlasts its watermark and the first 2 s of the wait still serves the resync waiting for it', async () => {
    let advances = 0;
    // A keeper in a process too busy to finish an advance for 7 s (a restart storm).
    const slow = () => new Promise<boolean>((res) => setTimeout(() => res(true), 7000));
    await keeperServing(() => (advances++, slow()), ['suspended_user:a'], async (got, _keeper, c) => {
      expect(got.source).toBe('shared');
      expect(got.logKeys).toEqual(['suspended_user:a']);
      expect(got.buildReason).toBeUndefined();
      expect(advances).toBeGreaterThan(0);
      expect(await c.get(KEYS.lease)).toBeNull();
    });
  }, 60_000);

  it('a barrier that timed out on a subscriber still open does not stop the keeper: it tries again and serves the resync', async () => {
    let barriers = 0;
    let stopped = '';
    const barrier = async () => (++barriers <= 3 ? ('timeout' as const) : true);
    await keeperServing(barrier, ['suspended_user:a'], async (got, keeper) => {
      expect(got.source).toBe('shared');
      expect(got.logKeys).toEqual(['suspended_user:a']);
      expect(barriers).toBeGreaterThan(3);
      expect(stopped).toBe('');
      expect(keeper.active).toBe(true);
    }, (why) => (stopped = why));
  }, 60_000);

  it('a keeper whose advance never finishes stops keeping its watermark alive: the resync builds without waiting out its bound', async () => {
    await keeperServing(() => new Promise<boolean>(() => undefined), [], async (got) => {
      expect(got.source).toBe('built');
      // The watermark lapsed (no_keeper) before the resync's own wait ran out (keeper_late).
      expect(got.buildReason).toBe('no_keeper');
    });
  }, 60_000);

  it('a keeper that is gone ends the wait for it as soon as its watermark lapses: the resync builds, saying why', async () => {
    const { r, c } = await setup();
    await c.set('suspended_user:bob', 'true', 'EX', 3600);
    const { reader, reading } = await readerWaiting(r, c);
    try {
      const got = await reading;
      expect(got.source).toBe('built');
      expect(got.buildReason).toBe('no_keeper');
      expect(got.entries).toBe(1);
    } finally {
      reader.disconnect();
    }
  }, 60_000);
});
