import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { ListKind } from './keys.js';
import { timerWaiter, type PublishWaiter } from './publish-waiter.js';
import { bucketsFor, changedBuckets, chunkSpan, headerBytes, packChunked, parseIndex, unpackChunk, type ChunkIndex } from './snapshot-chunks.js';
import { SnapshotBase } from './snapshot-base.js';
import type { SnapshotKeys } from './snapshot-keys.js';
import { Script } from './lua-script.js';
import { bucketDelta } from './bucket-delta.js';
import { DROP, FETCH_OR_LEASE, PUBLISH, SCAN_STEP } from './snapshot-scripts.js';
import { WATERMARK_TTL_MS } from './snapshot-keeper.js';

export type { SnapshotBase } from './snapshot-base.js';
export { snapshotKeys, type SnapshotKeys } from './snapshot-keys.js';

/** Buckets looked at per script call: bounds how long one call holds Redis (~1 ms per 1,000 keys). */
const SCAN_COUNT = 250;
/** A builder that dies leaves the lease to expire; a live one renews it while it scans. */
const LEASE_MS = 5_000;
/** A replaced snapshot lingers this long, so a sidecar half-way through reading it can finish. */
const GRACE_MS = 30_000;
/** The builder writes the snapshot in windows, so no single command outgrows the command timeout. */
const WRITE_WINDOW = 1024 * 1024;
/**
 * Readers read it in windows that fit the 16 KiB reply buffer every Redis client connection has,
 * one at a time: a reply that fits is copied there, a larger one (or a second one in flight) into
 * freshly allocated memory, which costs Redis far more when a fleet reads at once. Measured with
 * 500 new connections each reading a 0.6 MB string (Redis 7.0, INFO commandstats): whole, ~2,500
 * µs of command time per GETRANGE and most replies past a 250 ms command timeout; in 128 KiB
 * windows ~100 µs per window, ~800 µs per reader; in 16,000-byte windows 2-4 µs per window,
 * 80-150 µs per reader; the same with two in flight, ~900 µs per reader.
 */
const READ_WINDOW = 16_000;
/** A resync gives up (and the next heartbeat starts another) after this long without a snapshot. */
const WAIT_BOUND_MS = 60_000;
/** A command that timed out on a live connection is sent again this many times. */
const RETRIES = 4;

/**
 * Every command here is idempotent (a repeated scan step re-reads its page, a repeated SETRANGE
 * writes the same window again, the polls and reads change nothing), so a timeout on a connection that is still up is
 * retried instead of failing the resync: under a restart storm Redis is slow for a while, and
 * starting over would need a newer snapshot, i.e. more work for the same Redis.
 */
async function retrying<T>(conn: Redis, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= RETRIES || conn.status !== 'ready' || !/timed out/i.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 50 * (attempt + 1) + Math.random() * 100).unref());
    }
  }
}

const KIND_BY_CODE: Record<number, ListKind> = {
  0x73: 'suspended_user', // s
  0x69: 'blocked_ip', // i
  0x63: 'blocked_cidr', // c
  0x72: 'user_risk', // r
};

export interface SnapshotSink {
  /** expiresAtMs is local time (Infinity: no TTL); score only for user_risk. */
  add(kind: ListKind, id: string, expiresAtMs: number, score: string | undefined): void;
}

export interface LoadedSnapshot {
  /** Every entry (a full read), or with `removed` the entries that differ in the buckets that changed. */
  readonly pages: Buffer[];
  /**
   * Only when read against a base: the base's entries that differ in the changed buckets, to
   * drop from the mirror before `pages` go in (source 'incremental'; see bucket-delta.ts).
   */
  readonly removed?: Buffer[];
  /** local ms minus server ms, measured after a reply (never less than the true offset). */
  readonly offsetMs: number;
  readonly source: 'shared' | 'built' | 'incremental';
  readonly entries: number;
  /** What to keep for the next catch-up; absent when the snapshot could not be packed. */
  readonly base?: SnapshotBase;
  /** Bytes of the published snapshot read from Redis (shared and incremental). */
  readonly bytesRead?: number;
  /**
   * A snapshot begun before the caller's resync comes with its keeper's log: every key written
   * since the snapshot began, up to the caller's start, which the caller must re-read.
   */
  readonly logKeys?: string[];
  /** Built here and published under this key: the caller may keep its log (snapshot-keeper.ts). */
  readonly published?: string;
  /** Built by a shared resync: why no published snapshot would do (a metric label). */
  readonly buildReason?: BuildReason;
}

/**
 * Why a resync built a snapshot instead of reading the published one. keeper_late: a keeper
 * serves it but did not reach this resync's start within LOG_WAIT_MS; log_unreadable: its log
 * was shorter than its watermark said (expired, deleted).
 */
export type BuildReason = 'no_snapshot' | 'server_restarted' | 'no_keeper' | 'other_keeper' | 'keeper_late' | 'log_unreadable';

const scanStep = new Script(SCAN_STEP);
const fetchOrLease = new Script(FETCH_OR_LEASE);
const publish = new Script(PUBLISH);
const drop = new Script(DROP);

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function text(b: unknown): string {
  return Buffer.isBuffer(b) ? b.toString() : String(b);
}

/**
 * Reads every listed key of one node with the scan-step script. With `lease`, it is renewed as
 * the scan goes (a shared build). `alive` is checked between pages: a build on a connection that
 * dropped meanwhile is abandoned.
 */
export async function scanNode(conn: Redis, prefix: string, alive: () => boolean, lease?: string): Promise<LoadedSnapshot & { startedUs: number; exact: boolean }> {
  const match = prefix === '' ? '' : `${escapeGlob(prefix)}*`;
  const pages: Buffer[] = [];
  let cursor = '0';
  let startedUs = 0;
  let offsetMs = 0;
  let entries = 0;
  let calls = 0;
  let exact = true;
  do {
    if (!alive()) throw new Error('connection lost during snapshot');
    const args = [cursor, SCAN_COUNT, prefix, match, exact ? '1' : '0'];
    const [next, nowUs, page, pageExact] = (await retrying(conn, () => scanStep.run(conn, [], args))) as [Buffer, Buffer, Buffer, Buffer | undefined];
    if (text(pageExact) !== '1') exact = false;
    offsetMs = Date.now() - Number(text(nowUs)) / 1000;
    if (startedUs === 0) startedUs = Number(text(nowUs));
    cursor = text(next);
    if (page.length > 0) {
      pages.push(page);
      entries += countEntries(page);
    }
    if (lease !== undefined && ++calls % 50 === 0) await retrying(conn, () => conn.pexpire(lease, LEASE_MS));
  } while (cursor !== '0');
  return { pages, offsetMs, startedUs, source: 'built', entries, exact };
}

function countEntries(page: Buffer): number {
  // Every entry ends in ';' and ids are length-prefixed, so only the terminators after ids count;
  // an exact count is cheap enough to get while parsing, so this is an upper bound for metrics.
  let n = 0;
  for (let i = page.indexOf(0x3b); i !== -1; i = page.indexOf(0x3b, i + 1)) n++;
  return n;
}

/**
 * The published form: bucketed, digested, each bucket deflated (snapshot-chunks.ts). Measured on
 * 100,000 bench entries (2.9 MB raw) as one stream: level 1 gives 3.5x in 25 ms, level 6 4.6x in
 * 95 ms, level 9 4.7x in 590 ms. Built once, read by every sidecar (GETRANGE command time is
 * ~0.2 µs per KB on this machine), so level 6.
 */
export function packSnapshot(pages: Buffer[], exact = false): Promise<Buffer> {
  return packChunked(pages, exact);
}

/** Inflating on the event loop: let requests through every so many buckets. */
const UNPACK_YIELD_EVERY = 256;

/** Every bucket's entries; rejects a truncated or corrupted snapshot (length, index, digests). */
export async function unpackSnapshot(packed: Buffer): Promise<{ pages: Buffer[]; base: SnapshotBase }> {
  const index = parseIndex(packed, packed.length);
  const chunks = packed.subarray(index.headerBytes);
  return { pages: await unpackBuckets(index, (b) => chunks.subarray(...chunkSpan(index, b)), allBuckets(index)), base: SnapshotBase.of(index, chunks) };
}

function allBuckets(index: ChunkIndex): number[] {
  return Array.from({ length: index.buckets }, (_, b) => b);
}

/** `keepEmpty`: one result per bucket, in order, an empty bucket too (a delta pairs them up). */
async function unpackBuckets(index: ChunkIndex, chunkOf: (b: number) => Buffer, buckets: number[], verify = true, keepEmpty = false): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < buckets.length; i++) {
    if (i % UNPACK_YIELD_EVERY === UNPACK_YIELD_EVERY - 1) await new Promise((r) => setImmediate(r));
    const b = buckets[i] as number;
    const raw = unpackChunk(index, b, chunkOf(b), verify);
    if (keepEmpty || raw.length > 0) out.push(raw);
  }
  return out;
}

/** Writes the packed snapshot in windows; SETRANGE makes a retried window harmless. */
async function writePacked(conn: Redis, key: string, packed: Buffer): Promise<void> {
  for (let at = 0; at === 0 || at < packed.length; at += WRITE_WINDOW) {
    const part = packed.subarray(at, at + WRITE_WINDOW);
    await retrying(conn, () => conn.multi().setrange(key, at, part).pexpire(key, 2 * LEASE_MS).exec());
  }
}

/**
 * A snapshot that started after this call began, shared between sidecars: if one was published
 * since, it is read (a few windowed GETRANGEs); otherwise one sidecar takes the lease and builds it
 * with the scan-step script while the others wait for it. A snapshot that began after the caller's
 * tracking was on, plus a re-read of every key invalidated since the call began, is exactly Redis.
 */
export async function freshSnapshot(
  conn: Redis,
  prefix: string,
  keys: SnapshotKeys,
  alive: () => boolean,
  /** A plain sleep polls every 100-250 ms; see PublishWaiter. */
  waiting: PublishWaiter | ((ms: number) => Promise<void>),
  /**
   * The caller's own, the same for every resync: a build cut short by a lost connection cannot
   * hand its lease back, and the next resync must recognise it as its own rather than wait it out.
   */
  leaseId: string = randomUUID(),
  /**
   * The earliest start (server µs) a snapshot may have, set by the first poll. A caller whose
   * tracking stayed on since an earlier call began passes that call's, so a retry after a failed
   * read can use the snapshot the first call was waiting for instead of needing a newer build.
   */
  since: { after: string } = { after: '' },
  /** The snapshot the caller's mirror was built from: only the buckets changed since are read. */
  base?: SnapshotBase,
  /** The caller keeps a log for what it builds (snapshot-keeper.ts): publish a first watermark with it. */
  keeps = false,
): Promise<LoadedSnapshot> {
  const live = () => alive() && conn.status === 'ready';
  const waiter = typeof waiting === 'function' ? timerWaiter(waiting) : waiting;
  let after = since.after;
  const waitUntil = Date.now() + WAIT_BOUND_MS;
  /**
   * Set when a keeper is first found short of `after` (so the wait for a build does not use it
   * up); past it, or with its log gone, only a fresh snapshot will do.
   */
  let logUntil = Infinity;
  for (;;) {
    if (!live()) throw new Error('connection lost while waiting for a snapshot');
    if (Date.now() > waitUntil) throw new Error('no snapshot within the bound');
    const args = [after, leaseId, LEASE_MS, Date.now() < logUntil ? '1' : '0'];
    waiter.arm();
    const [state, nowUs, afterUs, meta, log] = ((await retrying(conn, () => fetchOrLease.run(conn, [keys.meta, keys.lease, keys.arrival, keys.logWatermark], args))) as Buffer[]).map(text) as [string, string, string, string, string];
    after = afterUs;
    since.after = afterUs;
    const offsetMs = Date.now() - Number(nowUs) / 1000;
    if (state === 'log') {
      // The log first: it is what may expire soonest once its keeper stops.
      const logKeys = await readLog(conn, log);
      if (logKeys === undefined) {
        logUntil = 0;
        continue;
      }
      const read = await readPublished(conn, meta, offsetMs, base);
      if (read !== undefined) return { ...read, logKeys };
      await retrying(conn, () => drop.run(conn, [keys.meta], [meta]));
      continue;
    }
    if (state === 'logwait') {
      if (logUntil === Infinity) logUntil = Date.now() + LOG_WAIT_MS;
      // Soon after the first, polls slow down: a keeper this slow is busy, and a fleet polling
      // every 60-120 ms for long would load Redis more than the keeper's answer saves.
      const poll = logUntil - Date.now() > LOG_WAIT_MS - LOG_FAST_MS ? LOG_POLL_MS : LOG_SLOW_POLL_MS;
      await new Promise((r) => setTimeout(r, poll + Math.random() * poll).unref());
      continue;
    }
    if (state === 'ok') {
      const read = await readPublished(conn, meta, offsetMs, base);
      if (read !== undefined) return read;
      // Unreadable (truncated, corrupted, or replaced and expired meanwhile): unpublish it unless
      // it was replaced, so this poll or the next builds a fresh one instead of reading it again.
      await retrying(conn, () => drop.run(conn, [keys.meta], [meta]));
      continue;
    }
    // Only the lease holder builds: a holder that dies lets its lease expire, and the next poll
    // takes it over. (Building without it would multiply the work by the size of the fleet.)
    if (state === 'build') {
      const staging = keys.staging(randomUUID());
      const release = () => publish.run(conn, [keys.meta, keys.lease, staging, keys.logWatermark], ['', '0', 0, leaseId, GRACE_MS, -1, '']).catch(() => undefined);
      let built;
      // No gathering of a wave first (until the keeper, each wave that arrived after a build began
      // needed another, so builders waited up to 2 s for arrivals to stop): later arrivals take
      // this snapshot with its keeper's log.
      try {
        built = await scanNode(conn, prefix, live, keys.lease);
      } catch (err) {
        // Hand the lease back at once rather than leave the others waiting for it to expire.
        await release();
        throw err;
      }
      // Publishing is an optimisation for the others: this sidecar has what it needs either way.
      let packed: Buffer | undefined;
      let published: string | undefined;
      try {
        packed = await packSnapshot(built.pages, built.exact);
        await writePacked(conn, staging, packed);
        const done = await publish.run(conn, [keys.meta, keys.lease, staging, keys.logWatermark], [meta, built.startedUs.toFixed(0), built.entries, leaseId, GRACE_MS, packed.length, keeps ? FIRST_WATERMARK_TTL_MS : '']);
        if (Number(done) === 1) published = staging;
      } catch {
        await release();
      }
      const buildReason: BuildReason = log === 'log_refused' ? (logUntil === 0 ? 'log_unreadable' : 'keeper_late') : (log as BuildReason);
      if (packed === undefined) return { ...built, buildReason };
      const index = parseIndex(packed, packed.length);
      return { ...built, buildReason, base: SnapshotBase.of(index, packed.subarray(index.headerBytes)), ...(published === undefined ? {} : { published }) };
    }
    // Someone else is building: wait for the publish, or poll with jitter (a fleet polling in step would arrive together).
    await waiter.wait();
  }
}

/** The builder's first watermark lasts until its keeper's first tick replaces it (or it never starts). */
const FIRST_WATERMARK_TTL_MS = WATERMARK_TTL_MS;
/**
 * How long a resync waits for a keeper to reach its start before it asks for a fresh snapshot.
 * A keeper answers within a tick and a few round trips, but one sharing a busy process (a restart
 * storm) can take seconds, and a 2 s bound made 4 of 6 builds in a million-entry storm
 * (bench/state-scale.ts, build reason keeper_late): each a 4-6 s scan of Redis that replaced the
 * snapshot the others were about to take. Waiting is bounded by the keeper itself: 'logwait' means
 * its watermark lives, which it keeps alive for 6 s at a time and withdraws when it stops, so a
 * keeper that is gone turns into a build within seconds whatever this bound is.
 */
const LOG_WAIT_MS = 15_000;
/** Polls while a keeper catches up: it looks every 50 ms, so ~a tick later the watermark is past. */
const LOG_POLL_MS = 60;
/** For how long from the first 'logwait' the polls are LOG_POLL_MS apart; then LOG_SLOW_POLL_MS. */
const LOG_FAST_MS = 2_000;
const LOG_SLOW_POLL_MS = 300;
/** Log entries per LRANGE, so one reply stays small. */
const LOG_READ_PAGE = 1000;

/**
 * The keys in the log's first <length> entries ("<length> <log key>"), the header (entry 0)
 * left out; undefined if the log holds fewer.
 */
async function readLog(conn: Redis, log: string): Promise<string[] | undefined> {
  const m = /^(\d+) (\S+)$/.exec(log);
  if (m === null) return undefined;
  const length = Number(m[1]);
  const key = m[2] as string;
  if (length < 1) return undefined;
  const out: string[] = [];
  for (let at = 1; at < length; at += LOG_READ_PAGE) {
    const page = await retrying(conn, () => conn.lrange(key, at, Math.min(length, at + LOG_READ_PAGE) - 1));
    if (page.length !== Math.min(LOG_READ_PAGE, length - at)) return undefined;
    out.push(...page);
  }
  return out;
}

/** Bytes [from, to) of the stored snapshot in READ_WINDOW windows; undefined if it is shorter. */
async function readRange(conn: Redis, key: string, from: number, to: number, count?: { bytes: number }): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  for (let at = from; at < to; at += READ_WINDOW) {
    const end = Math.min(to, at + READ_WINDOW) - 1;
    const part = await retrying(conn, () => conn.getrangeBuffer(key, at, end));
    if (count) count.bytes += part.length;
    if (part.length !== end - at + 1) return undefined;
    parts.push(part);
  }
  return Buffer.concat(parts);
}

/** Changed chunks closer than this are read in one range: a few bytes more beat another command. */
const MERGE_GAP = 2048;

/**
 * The published snapshot. With a comparable base, only the header and the chunks whose digest
 * changed are read, and the result says what to remove and add; otherwise all of it.
 */
async function readPublished(conn: Redis, meta: string, offsetMs: number, base?: SnapshotBase): Promise<LoadedSnapshot | undefined> {
  try {
    return await readPublishedOrThrow(conn, meta, offsetMs, base);
  } catch (err) {
    // A failed read (timeout, lost connection, refused command) fails the resync; only a
    // snapshot that is not what its meta says is unpublished.
    if (err instanceof Unreadable) return undefined;
    throw err;
  }
}

/** A snapshot whose index, chunks or digests do not hold together (see parsed). */
class Unreadable extends Error {}

async function readPublishedOrThrow(conn: Redis, meta: string, offsetMs: number, base?: SnapshotBase): Promise<LoadedSnapshot | undefined> {
  const m = /^\S+ \d+ (\d+) (\d+) (.+)$/.exec(meta);
  if (m === null) return undefined;
  const entries = Number(m[1]);
  const bytes = Number(m[2]);
  const key = m[3] as string;
  const count = { bytes: 0 };
  // With a base, the header alone comes first (its size follows from the entry count, which the
  // index then confirms): reading a whole first window would fetch chunks that may be unchanged.
  const firstBytes = base === undefined ? READ_WINDOW : headerBytes(bucketsFor(entries));
  const first = await readRange(conn, key, 0, Math.min(bytes, firstBytes), count);
  if (first === undefined || first.length < 16) return undefined;
  const headBytes = headerBytes(first.readUInt32BE(8));
  if (headBytes > bytes) return undefined;
  const rest = headBytes > first.length ? await readRange(conn, key, first.length, headBytes, count) : Buffer.alloc(0);
  if (rest === undefined) return undefined;
  const index = await parsed(() => parseIndex(Buffer.concat([first, rest]), bytes));
  const changed = base === undefined ? undefined : worthReading(base.index, index);
  // The base's own entries of those buckets, first: a base that does not unpack (it never should)
  // means reading everything, not failing every resync on it.
  const before = base === undefined || changed === undefined ? undefined : await unpackBuckets(base.index, (b) => base.chunk(b), changed, false, true).catch(() => undefined);
  if (base === undefined || changed === undefined || before === undefined) {
    const whole = await readRange(conn, key, Math.max(first.length, headBytes), bytes, count);
    if (whole === undefined) return undefined;
    const packed = Buffer.concat([first, rest, whole]);
    const { pages, base: next } = await parsed(() => unpackSnapshot(packed));
    return { pages, offsetMs, source: 'shared', entries, base: next, bytesRead: count.bytes };
  }
  const fresh = await readChunks(conn, key, index, changed, count);
  if (fresh === undefined) return undefined;
  const after = await parsed(() => unpackBuckets(index, (b) => fresh.get(b) as Buffer, changed, true, true));
  // Only what differs inside each changed bucket is removed and added. A bucket that does not
  // parse (a checked chunk never should) gives up the delta for a whole read: if the fault was in
  // the new snapshot, the caller's decode refuses it there.
  const pages: Buffer[] = [];
  const removed: Buffer[] = [];
  try {
    for (let i = 0; i < changed.length; i++) bucketDelta(before[i] as Buffer, after[i] as Buffer, removed, pages);
  } catch {
    return readPublishedOrThrow(conn, meta, offsetMs);
  }
  // The unchanged buckets hold the same entries as the base's, so the base's chunks stand in.
  return { pages, removed, offsetMs, source: 'incremental', entries, base: base.caughtUp(index, fresh), bytesRead: count.bytes };
}

/**
 * The changed buckets, unless they are most of the snapshot: then one full read is fewer round
 * trips than scattered ranges, and replacing the lists is cheaper than removing and adding nearly
 * every entry one by one on the live mirror.
 */
function worthReading(from: ChunkIndex, to: ChunkIndex): number[] | undefined {
  const changed = changedBuckets(from, to);
  if (changed === undefined) return undefined;
  let bytes = 0;
  for (const b of changed) bytes += chunkSpan(to, b)[1] - chunkSpan(to, b)[0];
  return bytes > (to.ends[to.buckets - 1] ?? 0) / 2 ? undefined : changed;
}

async function parsed<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new Unreadable((err as Error).message);
  }
}

/** Protocol bytes Redis adds to each GETRANGE reply ("$<len>\r\n" ... "\r\n"), rounded up. */
const REPLY_OVERHEAD = 16;

/**
 * The deflated chunks of `buckets`, read in merged ranges. Small ranges go out together, as many
 * as fit one READ_WINDOW of replies: one round trip each instead of one per range (a catch-up of
 * 11 % of a million-entry snapshot's 4,096 buckets was ~420 sequential GETRANGEs of ~2 KB), and
 * still within the reply buffer that makes a window cheap for Redis (see READ_WINDOW).
 */
async function readChunks(conn: Redis, key: string, index: ChunkIndex, buckets: number[], count: { bytes: number }): Promise<Map<number, Buffer> | undefined> {
  const out = new Map<number, Buffer>();
  const ranges: { first: number; last: number; from: number; to: number }[] = [];
  let i = 0;
  while (i < buckets.length) {
    const startB = buckets[i] as number;
    let endB = startB;
    let j = i + 1;
    while (j < buckets.length && chunkSpan(index, buckets[j] as number)[0] - chunkSpan(index, endB)[1] <= MERGE_GAP) endB = buckets[j++] as number;
    ranges.push({ first: i, last: j, from: chunkSpan(index, startB)[0], to: chunkSpan(index, endB)[1] });
    i = j;
  }
  const place = (r: (typeof ranges)[number], range: Buffer) => {
    for (let k = r.first; k < r.last; k++) {
      const [s, e] = chunkSpan(index, buckets[k] as number);
      out.set(buckets[k] as number, range.subarray(s - r.from, e - r.from));
    }
  };
  let batch: typeof ranges = [];
  let batchBytes = 0;
  const flush = async (): Promise<boolean> => {
    if (batch.length === 0) return true;
    const sent = batch;
    batch = [];
    batchBytes = 0;
    const parts = await retrying(conn, async () => {
      const p = conn.pipeline();
      for (const r of sent) p.getrangeBuffer(key, index.headerBytes + r.from, index.headerBytes + r.to - 1);
      const replies = (await p.exec()) ?? [];
      for (const [err] of replies) if (err) throw err;
      return replies.map(([, v]) => v as Buffer);
    });
    for (let k = 0; k < sent.length; k++) {
      const r = sent[k] as (typeof sent)[number];
      const part = parts[k] ?? Buffer.alloc(0);
      count.bytes += part.length;
      if (part.length !== r.to - r.from) return false;
      place(r, part);
    }
    return true;
  };
  for (const r of ranges) {
    const bytes = r.to - r.from + REPLY_OVERHEAD;
    if (bytes > READ_WINDOW) {
      if (!(await flush())) return undefined;
      const range = await readRange(conn, key, index.headerBytes + r.from, index.headerBytes + r.to, count);
      if (range === undefined) return undefined;
      place(r, range);
      continue;
    }
    if (batchBytes + bytes > READ_WINDOW && !(await flush())) return undefined;
    batch.push(r);
    batchBytes += bytes;
  }
  return (await flush()) ? out : undefined;
}

/**
 * A length, up to `stop`. Never signed: a planted chunk (one that passes its digest) with a
 * negative id length pointed the decoder back at an entry it had read, and it read it forever.
 */
function readInt(buf: Buffer, at: number, stop: number): [number, number] {
  let i = at;
  let n = 0;
  for (; i < buf.length && buf[i] !== stop; i++) {
    const d = (buf[i] as number) - 0x30;
    if (d < 0 || d > 9) throw new Error(`snapshot: bad digit at ${i}`);
    n = n * 10 + d;
  }
  if (i >= buf.length) throw new Error('snapshot: truncated entry');
  return [n, i + 1];
}

/** Decodes pages (see snapshot-scripts.ts for the encoding) into `sink`, expiry in local time. */
export function decodePages(pages: Buffer[], offsetMs: number, sink: SnapshotSink): number {
  let n = 0;
  for (const buf of pages) {
    let i = 0;
    while (i < buf.length) {
      const kind = KIND_BY_CODE[buf[i] as number];
      if (kind === undefined) throw new Error(`snapshot: unknown entry kind at ${i}`);
      const [idLen, idAt] = readInt(buf, i + 1, 0x3a);
      const id = buf.toString('utf8', idAt, idAt + idLen);
      // The expiry ends at ';' or (risk) ','.
      let j = idAt + idLen;
      let neg = false;
      if (buf[j] === 0x2d) {
        neg = true;
        j++;
      }
      let exp = 0;
      for (; j < buf.length && buf[j] !== 0x3b && buf[j] !== 0x2c; j++) exp = exp * 10 + ((buf[j] as number) - 0x30);
      if (j >= buf.length) throw new Error('snapshot: truncated entry');
      let score: string | undefined;
      if (buf[j] === 0x2c) {
        const [sLen, sAt] = readInt(buf, j + 1, 0x3a);
        score = buf.toString('utf8', sAt, sAt + sLen);
        j = sAt + sLen;
        if (buf[j] !== 0x3b) throw new Error('snapshot: bad risk entry');
      }
      sink.add(kind, id, neg ? Infinity : exp + offsetMs, score);
      n++;
      i = j + 1;
    }
  }
  return n;
}
