/**
 * What one sidecar's catch-up read of the shared snapshot costs Redis, apart from the build the
 * fleet shares: N callers read a published snapshot (one fetch-or-lease poll, the GETRANGE windows)
 * and the figures are compared, in the same run, with GETRANGE-ing the raw pages in the 256 KB
 * windows the uncompressed format used. Then N callers resync together from nothing (one build,
 * the rest wait and read), to show the polls' share. Command time from INFO commandstats.
 *
 * Run: npm run build && node dist/bench/snapshot-read.js [--entries 100000] [--readers 20]
 */
import { Redis } from 'ioredis';
import { freshSnapshot, packSnapshot, scanNode, snapshotKeys } from '../src/state/snapshot.js';
import { startRedis } from '../test/helpers/redis.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
}

type Stats = Map<string, { calls: number; usec: number }>;

async function stats(r: Redis): Promise<Stats> {
  const m: Stats = new Map();
  for (const line of (await r.info('commandstats')).split('\r\n')) {
    const x = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (x) m.set(x[1]!, { calls: Number(x[2]), usec: Number(x[3]) });
  }
  return m;
}

/** Top-level commands only: what the scripts call inside (GET, SET, SCAN, PTTL...) is part of EVALSHA's time. */
const COUNTED = ['evalsha', 'eval', 'getrange', 'multi', 'exec', 'setrange', 'pexpire'];

function delta(a: Stats, b: Stats): { usec: number; by: string } {
  let usec = 0;
  const by: string[] = [];
  for (const name of COUNTED) {
    const x = b.get(name);
    if (x === undefined) continue;
    const p = a.get(name) ?? { calls: 0, usec: 0 };
    if (x.calls === p.calls) continue;
    usec += x.usec - p.usec;
    by.push(`${name} ${x.calls - p.calls} calls ${x.usec - p.usec} µs`);
  }
  return { usec, by: by.join('; ') };
}

const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

async function main(): Promise<void> {
  const entries = arg('entries', 100_000);
  const readers = arg('readers', 20);
  const redis = await startRedis();
  const r = new Redis(redis.url);
  for (let i = 0; i < entries; i += 10_000) {
    const p = r.pipeline();
    for (let j = i; j < Math.min(entries, i + 10_000); j++) p.set(`blocked_ip:10.${(j >> 16) & 255}.${(j >> 8) & 255}.${j & 255}`, 'true', 'EX', 86_400);
    await p.exec();
  }
  const conns = await Promise.all(
    Array.from({ length: readers }, async () => {
      const c = new Redis(redis.url);
      await c.ping();
      return c;
    }),
  );
  const keys = snapshotKeys('');
  console.log(`# snapshot-read: ${fmt(entries)} entries, ${readers} readers`);

  let a = await stats(r);
  const built = await scanNode(r, '', () => true);
  const build = delta(a, await stats(r));
  const raw = Buffer.concat(built.pages);
  const packed = await packSnapshot(built.pages);
  console.log(`build (shared by the fleet): ${fmt(build.usec)} µs; raw ${fmt(raw.length)} bytes, deflated ${fmt(packed.length)} bytes`);

  // Baseline: the uncompressed pages read in 256 KB windows, as every reader did before.
  await r.set('bench:raw', raw);
  a = await stats(r);
  await Promise.all(
    conns.map(async (c) => {
      for (let at = 0; at < raw.length; at += 256 * 1024) await c.getrangeBuffer('bench:raw', at, Math.min(raw.length, at + 256 * 1024) - 1);
    }),
  );
  const base = delta(a, await stats(r));
  console.log(`baseline, raw pages in 256 KB windows: ${fmt(base.usec / readers)} µs per reader (${base.by})`);

  // A published snapshot that every reader accepts (its start is in the future).
  const run = /run_id:(\w+)/.exec(await r.info('server'))?.[1] ?? '';
  await r.set(keys.staging('bench'), packed);
  await r.set(keys.meta, `${run} ${(Date.now() + 3_600_000) * 1000} ${built.entries} ${packed.length} ${keys.staging('bench')}`);
  await Promise.all(conns.map((c) => freshSnapshot(c, '', keys, () => true, sleep))); // loads the script on every connection
  a = await stats(r);
  await Promise.all(conns.map((c) => freshSnapshot(c, '', keys, () => true, sleep)));
  const read = delta(a, await stats(r));
  console.log(`published, deflated: ${fmt(read.usec / readers)} µs per reader (${read.by})`);

  // From nothing: one caller builds, the others poll for it and read it.
  await r.del(keys.meta);
  a = await stats(r);
  const got = await Promise.all(conns.map((c) => freshSnapshot(c, '', keys, () => true, sleep)));
  const all = delta(a, await stats(r));
  const builds = got.filter((g) => g.source === 'built').length;
  console.log(`resync together from nothing: ${builds} build(s); ${fmt(all.usec)} µs in all, ${fmt((all.usec - builds * build.usec) / readers)} µs per reader beyond the builds (${all.by})`);

  for (const c of conns) c.disconnect();
  r.disconnect();
  await redis.stop();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
