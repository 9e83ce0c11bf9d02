import { entryEnd, lastEntryHash } from './snapshot-chunks.js';

/**
 * The entries that differ between two versions of one bucket: those only in the old go to
 * `removed`, those only in the new to `added`, as runs of whole entries. A restart changes a few
 * entries in each changed bucket of ~250, and decoding and re-applying all the others on both
 * sides was most of a catch-up's CPU: 1,000,000 entries with 474 buckets changed, 184 ms to
 * replace them whole against 23 ms for this (bench/catch-up-cpu.ts, same run).
 *
 * What is left alone is whole hash groups (entries of one key hash) equal in both: equal bytes
 * are the same keys, expiries and scores, which the mirror already holds as the old snapshot put
 * them, and every entry that maps to one mirror key (a key scanned twice, the spellings of one
 * address) shares a hash, so replacing a group is replacing the bucket for those keys. The walk
 * relies on the bucket order (key hash, then bytes: snapshot-chunks.ts), which every snapshot
 * is packed in.
 */

/** Bytes compared per native call: a bucket is a few KB, so a handful of calls, then a byte loop. */
const BLOCK = 256;

function commonPrefix(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i + BLOCK <= n && a.compare(b, i, i + BLOCK, i, i + BLOCK) === 0) i += BLOCK;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function commonSuffix(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i + BLOCK <= n && a.compare(b, b.length - i - BLOCK, b.length - i, a.length - i - BLOCK, a.length - i) === 0) i += BLOCK;
  while (i < n && a[a.length - 1 - i] === b[b.length - 1 - i]) i++;
  return i;
}

/** Collects [from, to) spans of one buffer, joining adjacent ones, into `out`. */
class Runs {
  private from = 0;
  private to = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly out: Buffer[],
  ) {}

  add(from: number, to: number): void {
    if (from === this.to && this.to > this.from) {
      this.to = to;
      return;
    }
    this.flush();
    this.from = from;
    this.to = to;
  }

  flush(): void {
    if (this.to > this.from) this.out.push(this.buf.subarray(this.from, this.to));
    this.from = this.to = 0;
  }
}

/**
 * Appends to `removed` and `added`. Throws if either side is not a run of whole entries (the
 * caller then reads everything).
 */
export function bucketDelta(before: Buffer, after: Buffer, removed: Buffer[], added: Buffer[]): void {
  // The shared head and tail by bytes first: most of a bucket, skipped at memcmp speed.
  const head = commonPrefix(before, after);
  const bounds = [0];
  while ((bounds.at(-1) as number) < before.length) {
    const end = entryEnd(before, bounds.at(-1) as number);
    if (end > head) break;
    bounds.push(end);
  }
  let start = bounds.at(-1) as number;
  // The tail must start on an entry boundary of both sides, reached by walking each from the
  // head: equal bytes at the same distance from the end are only the same entries if both parses
  // land there (an id can hold bytes that look like an entry).
  const tail = commonSuffix(before, after);
  let x = start;
  let y = start;
  for (;;) {
    const dx = before.length - x;
    const dy = after.length - y;
    if (dx === dy && dx <= tail) break;
    if (dx >= dy) x = entryEnd(before, x);
    if (dy >= dx) y = entryEnd(after, y);
  }
  // The head gives back the entries of the hash group the first difference is in: a group is
  // replaced whole (below), so its shared part must not stay behind.
  const firstBefore = start < before.length ? hashAt(before, start) : -1;
  const firstAfter = start < after.length ? hashAt(after, start) : -1;
  while (bounds.length > 1) {
    const h = hashAt(before, bounds[bounds.length - 2] as number);
    if (h !== firstBefore && h !== firstAfter) break;
    bounds.pop();
    start = bounds.at(-1) as number;
  }
  // Between them, a merge in bucket order, hash group by hash group: a group that differs at all
  // is removed and added whole, as the whole bucket used to be. Per entry it would not be safe:
  // one key can be in a snapshot twice (SCAN may return a key twice) or under two spellings,
  // and removing one copy while its twin stayed paired would unlist the key. Any entries the
  // same key can stand for share its hash. Two changes in one bucket still leave the groups
  // between them in place (at 1,000,000 entries and 500 changes, 4,458 entries applied became ~750).
  const gone = new Runs(before, removed);
  const come = new Runs(after, added);
  const b = new Cursor(before, start);
  const a = new Cursor(after, start);
  // A group reaching into the tail is taken whole. Once both sides are past x and y at the same
  // distance from their ends, what is left is the same entries on both.
  while (b.at < x || a.at < y || before.length - b.at !== after.length - a.at) {
    const h = a.done() || (!b.done() && b.hash() <= a.hash()) ? b.hash() : a.hash();
    const gb = b.at;
    const ga = a.at;
    b.passGroup(h);
    a.passGroup(h);
    if (b.at - gb === a.at - ga && before.compare(after, ga, a.at, gb, b.at) === 0) continue;
    gone.add(gb, b.at);
    come.add(ga, a.at);
  }
  gone.flush();
  come.flush();
}

function hashAt(buf: Buffer, at: number): number {
  entryEnd(buf, at);
  return lastEntryHash(buf);
}

/** A walk over one side's entries, each parsed and hashed once. */
class Cursor {
  private end = -1;
  private h = 0;
  constructor(
    private readonly buf: Buffer,
    public at: number,
  ) {}

  done(): boolean {
    return this.at >= this.buf.length;
  }

  /** The hash of the entry at `at` (not past the end). */
  hash(): number {
    if (this.end < 0) {
      this.end = entryEnd(this.buf, this.at);
      this.h = lastEntryHash(this.buf);
    }
    return this.h;
  }

  /** Past every entry from here whose hash is h. */
  passGroup(h: number): void {
    while (!this.done() && this.hash() === h) {
      this.at = this.end;
      this.end = -1;
    }
  }
}
