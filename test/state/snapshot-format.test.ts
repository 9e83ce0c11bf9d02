import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { eventually, startRedis, type RedisProcess } from '../helpers/redis.js';
import { RedisStateStore } from '../../src/state/index.js';
import { deflateRawSync } from 'node:zlib';
import { decodePages, freshSnapshot, packSnapshot, scanNode, snapshotKeys, type LoadedSnapshot } from '../../src/state/snapshot.js';
import { parseIndex, unpackChunk } from '../../src/state/snapshot-chunks.js';
import { openStore, redisConfig } from './fixtures.js';

const KEYS = snapshotKeys('');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function seed(r: Redis): Promise<void> {
  const p = r.pipeline();
  // Enough that a build takes several scan steps, so a concurrent caller waits for it.
  for (let i = 0; i < 5000; i++) p.set(`blocked_ip:10.2.${i >> 8}.${i & 255}`, 'true', 'EX', 3600);
  p.set('suspended_user:mallory', 'true');
  p.set('blocked_cidr:192.0.2.0/24', 'true', 'EX', 3600);
  p.hset('user_risk:trent', 'score', '0.8');
  p.set('user_risk:plain', '0.4', 'EX', 3600);
  await p.exec();
}

function decoded(l: LoadedSnapshot): string[] {
  const out: string[] = [];
  // Expiry is dropped: each read has its own clock offset.
  decodePages(l.pages, l.offsetMs, { add: (kind, id, exp, score) => out.push(`${kind} ${id} ${exp === Infinity ? 'forever' : 'ttl'} ${score ?? ''}`) });
  return out.sort();
}

function conn(url: string): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: 1 });
  c.on('error', () => undefined);
  return c;
}

describe('the published (compressed) snapshot', () => {
  let redis: RedisProcess | undefined;
  const open: Redis[] = [];
  let store: RedisStateStore | undefined;
  afterEach(async () => {
    await store?.close();
    for (const c of open.splice(0)) c.disconnect();
    await redis?.stop();
    redis = undefined;
    store = undefined;
  });

  async function setup(): Promise<{ r: RedisProcess; c: Redis }> {
    const r = (redis = await startRedis());
    const c = conn(r.url);
    open.push(c);
    await seed(c);
    return { r, c };
  }

  /**
   * Publishes `stored` as a snapshot that claims to start an hour ahead (so any resync would take
   * it, and says it is `bytes` long), then opens a sidecar and waits until it is in sync.
   */
  async function plantedThenSynced(r: RedisProcess, c: Redis, name: string, stored: Buffer, entries: number, bytes: number): Promise<RedisStateStore> {
    const runId = /run_id:(\w+)/.exec(await c.info('server'))?.[1] ?? '';
    await c.set(KEYS.staging(name), stored);
    await c.set(KEYS.meta, `${runId} ${(Date.now() + 3_600_000) * 1000} ${entries} ${bytes} ${KEYS.staging(name)}`);
    const opened = await openStore(redisConfig(r.url));
    const s = (store = opened.store as RedisStateStore);
    await eventually(() => s.synced, 10_000, 'in sync');
    return s;
  }

  it('round trip: callers that share a build decode exactly what a private scan reads, from fewer bytes', async () => {
    const { r, c } = await setup();
    const callers = [0, 1, 2].map(() => conn(r.url));
    open.push(...callers);
    await Promise.all(callers.map((x) => x.ping()));
    const loaded = await Promise.all(callers.map((x) => freshSnapshot(x, '', KEYS, () => true, sleep)));
    expect(loaded.some((l) => l.source === 'shared')).toBe(true);
    const reference = await scanNode(c, '', () => true);
    const want = decoded(reference);
    expect(want.length).toBe(5004);
    for (const l of loaded) expect(decoded(l)).toEqual(want);
    const meta = (await c.get(KEYS.meta)) ?? '';
    const [, , entries, bytes, key] = meta.split(' ');
    expect(Number(entries)).toBeGreaterThanOrEqual(5004);
    const stored = await c.getBuffer(key ?? '');
    expect(stored?.length).toBe(Number(bytes));
    // The chunked format's magic, and smaller than the raw pages.
    expect(stored?.subarray(0, 4).toString()).toBe('ZTC2');
    const raw = reference.pages.reduce((n, p) => n + p.length, 0);
    expect(Number(bytes)).toBeLessThan(raw / 2);
  });

  for (const damage of ['corrupted', 'truncated'] as const) {
    it(`a ${damage} published snapshot is refused: the sidecar builds a fresh one and is exactly in step with Redis`, async () => {
      const { r, c } = await setup();
      // A snapshot that claims to start far in the future, so any resync would take it, holding
      // an entry that is not in Redis; then damaged.
      const packed = await packSnapshot([Buffer.from('s5:ghost-1;s7:mallory-1;')]);
      const stored = damage === 'corrupted' ? Buffer.from(packed.map((b, i) => (i > 2 ? b ^ 0x5a : b))) : packed.subarray(0, packed.length - 4);
      const s = await plantedThenSynced(r, c, 'planted', stored, 2, packed.length);
      expect(s.lastSnapshotSource).toBe('built');
      expect(s.userSuspended('ghost', Date.now())).toBe('clear');
      expect(s.userSuspended('mallory', Date.now())).toBe('listed');
      expect(s.ipBlocked('10.2.19.135', Date.now())).toBe('listed');
      expect(s.liveRisk('trent', Date.now())).toBe(0.8);
      // The damaged one is no longer published; the fresh build is.
      expect(await c.get(KEYS.meta)).not.toContain('planted');
    });
  }

  it('a planted chunk that would inflate to 80 MB is refused at the size cap, before its digest is computed, and the sidecar builds', async () => {
    const { r, c } = await setup();
    const bomb = deflateRawSync(Buffer.alloc(80 * 1024 * 1024, 0x73), { level: 9 });
    // One bucket: magic, flags (exact), 3 reserved, buckets, entries; its digest; its chunk's end.
    const head = Buffer.alloc(16 + 16 + 4);
    head.write('ZTC2', 0, 'latin1');
    head.writeUInt8(1, 4);
    head.writeUInt32BE(1, 8);
    head.writeUInt32BE(1, 12);
    head.writeUInt32BE(bomb.length, 32);
    const stored = Buffer.concat([head, bomb]);
    expect(() => unpackChunk(parseIndex(stored, stored.length), 0, bomb)).toThrow(/larger than/);
    const s = await plantedThenSynced(r, c, 'bomb', stored, 1, stored.length);
    expect(s.lastSnapshotSource).toBe('built');
    expect(s.userSuspended('mallory', Date.now())).toBe('listed');
    expect(await c.get(KEYS.meta)).not.toContain('bomb');
  });
});
