import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { parseIp } from '../ip.js';

/**
 * The published snapshot, split by a hash of each entry's key into buckets that are sorted,
 * digested and deflated one by one, so a sidecar that already holds an earlier snapshot reads
 * only the buckets whose digest changed: after a Redis restart or failover, a fleet re-reads the
 * few buckets the outage's writes touched instead of every copy of the whole list (at 1,000,000
 * entries and 10,000 sidecars, 70 GiB from one Redis; measured, ~9 GiB instead).
 *
 * Layout: "ZTC2", u8 flags (1: expiries exact), u8 reserved x3, u32 buckets, u32 entries, then
 * per bucket a 16-byte digest (SHA-256 of its sorted raw entries, truncated), then per bucket the
 * u32 end offset of its deflated chunk within the chunk area, then the chunks. An empty bucket
 * has an empty chunk. Chunks are raw deflate (ZTC1's had the zlib wrapper): the digest already
 * checks each one, and inflating without the wrapper's Adler-32 took 16 µs per 7 KB bucket
 * instead of 25 (Node 26, this machine), most of what a catch-up spends per changed bucket.
 */
const MAGIC = 0x5a544332; // "ZTC2"
const FIXED = 16;
const DIGEST = 16;
/**
 * 16, 256 or 4,096 buckets (up to 4,096 and 262,144 entries, then more): coarse steps, because two
 * snapshots with different bucket counts cannot be compared, and a list hovering near a boundary
 * would make every catch-up a full read. Fewer, larger buckets deflate better (a ~700-byte chunk
 * deflates 3x, a 10 KB one ~4x) but cost more to re-read per changed entry. At 1,000,000 entries
 * a bucket is ~2 KB deflated and the header 80 KB, ~1 % of the whole.
 */
const MAX_BUCKETS = 4096;
const FLAG_EXACT = 1;
/** zlib's default: level 1 saves the builder ~20 % of the pack and costs every reader ~18 % more bytes. */
const LEVEL = 6;

export interface ChunkIndex {
  readonly buckets: number;
  readonly entries: number;
  /** Expiries were read as absolute times (PEXPIRETIME): digests of equal content are equal. */
  readonly exact: boolean;
  readonly digests: Buffer;
  /** End offset of each bucket's chunk within the chunk area. */
  readonly ends: Uint32Array;
  /** Bytes before the chunk area. */
  readonly headerBytes: number;
}

export function headerBytes(buckets: number): number {
  return FIXED + buckets * (DIGEST + 4);
}

export function bucketsFor(entries: number): number {
  return entries <= 4096 ? 16 : entries <= 262_144 ? 256 : MAX_BUCKETS;
}

const KIND_IP = 0x69;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * FNV-1a over the key as the mirror holds it: an exact block by its parsed address, so two
 * spellings of one address (`::ffff:1.2.3.4`, `1.2.3.4`) share a bucket and replacing one bucket
 * never drops the other's entry. Not keyed: an attacker who chooses listed addresses can only
 * crowd one bucket, which costs re-reading it, never a wrong entry (digests are SHA-256). The low
 * bits pick the bucket; the whole hash orders the bucket's entries.
 */
function keyHash(buf: Buffer, kind: number, idAt: number, idEnd: number): number {
  let h = FNV_OFFSET ^ kind;
  if (kind === KIND_IP) {
    const v4 = dottedQuad(buf, idAt, idEnd);
    if (v4 !== undefined) return hashV4(h, v4);
    const ip = parseIp(buf.toString('latin1', idAt, idEnd));
    if (ip?.v === 4) return hashV4(h, ip.value);
    if (ip !== undefined) {
      for (let i = 0; i < ip.hex.length; i++) h = Math.imul(h ^ ip.hex.charCodeAt(i), FNV_PRIME);
      return h >>> 0;
    }
  }
  for (let i = idAt; i < idEnd; i++) h = Math.imul(h ^ (buf[i] as number), FNV_PRIME);
  return h >>> 0;
}

function hashV4(h: number, value: number): number {
  for (let s = 24; s >= 0; s -= 8) h = Math.imul(h ^ ((value >>> s) & 0xff), FNV_PRIME);
  return h >>> 0;
}

/**
 * An IPv4 address read from the bytes, without the string and object parseIp would make for each
 * of a million blocks: a quarter of the pack's time at 100,000 entries (200 -> 155 ms, measured on
 * the builder). Laxer than parseIp (leading zeros pass), which is safe: it
 * only has to give every address parseIp accepts as IPv4 the same value; anything else merely
 * lands in some bucket.
 */
function dottedQuad(buf: Buffer, from: number, to: number): number | undefined {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i < to; i++) {
    const c = buf[i] as number;
    if (c >= 0x30 && c <= 0x39) {
      octet = octet * 10 + (c - 0x30);
      if (++digits > 3 || octet > 255) return undefined;
    } else if (c === 0x2e && digits > 0 && dots < 3) {
      value = value * 256 + octet;
      octet = digits = 0;
      dots++;
    } else return undefined;
  }
  return dots === 3 && digits > 0 ? (value * 256 + octet) >>> 0 : undefined;
}

/** Where entryEnd found the entry it parsed last and its id (reused: no object per entry). */
const idSpan = { start: 0, at: 0, end: 0 };

/**
 * The end of the entry that starts at `i` (see snapshot-scripts.ts), its id's span left in
 * `idSpan`; throws on a truncated one. Past the id, only a risk score (length-prefixed) can hold
 * a ';', so an entry is walked by its lengths, never by searching for its terminator.
 */
export function entryEnd(buf: Buffer, i: number): number {
  let j = i + 1;
  let idLen = 0;
  for (; j < buf.length && buf[j] !== 0x3a; j++) idLen = idLen * 10 + digit(buf, j);
  const idAt = j + 1;
  if (j >= buf.length || idAt + idLen > buf.length) throw new Error('snapshot: truncated entry');
  let k = idAt + idLen;
  for (; k < buf.length && buf[k] !== 0x3b && buf[k] !== 0x2c; k++);
  if (buf[k] === 0x2c) {
    let sLen = 0;
    let s = k + 1;
    for (; s < buf.length && buf[s] !== 0x3a; s++) sLen = sLen * 10 + digit(buf, s);
    k = s + 1 + sLen;
  }
  if (k >= buf.length || buf[k] !== 0x3b) throw new Error('snapshot: truncated entry');
  idSpan.start = i;
  idSpan.at = idAt;
  idSpan.end = idAt + idLen;
  return k + 1;
}

/**
 * A length's digit. Anything else is refused: chunks read from Redis pass their digest, but anyone
 * who can write Redis can publish one, and a negative length would walk backwards, so a caller
 * stepping from entry to entry would never end.
 */
function digit(buf: Buffer, at: number): number {
  const d = (buf[at] as number) - 0x30;
  if (d < 0 || d > 9) throw new Error('snapshot: bad entry length');
  return d;
}

/** The bucket-order hash (keyHash) of the entry of `buf` that entryEnd parsed last. */
export function lastEntryHash(buf: Buffer): number {
  return keyHash(buf, buf[idSpan.start] as number, idSpan.at, idSpan.end);
}

/**
 * Calls `each` with the kind code, the id's byte span and the entry's byte span of every entry.
 * Spans, not strings: a million ids decoded only to be hashed would leave the builder tens of MB
 * of garbage that its RSS keeps.
 */
export function forEachEntry(buf: Buffer, each: (kind: number, idAt: number, idEnd: number, start: number, end: number) => void): void {
  for (let i = 0; i < buf.length; ) {
    const end = entryEnd(buf, i);
    each(buf[i] as number, idSpan.at, idSpan.end, i, end);
    i = end;
  }
}

/**
 * The digest is checked only after inflating, so a planted chunk could otherwise inflate to
 * gigabytes first. 64 MiB is ~1.5 million entries in one bucket, past any list this is built for.
 */
const MAX_CHUNK_RAW = 64 * 1024 * 1024;

function digest(raw: Buffer): Buffer {
  return createHash('sha256').update(raw).digest().subarray(0, DIGEST);
}

/**
 * Buckets deflated between two yields to the event loop: the pack runs on the builder's event
 * loop, and 8 buckets are ~2,000-3,000 entries, a few ms, so the builder's own requests wait no
 * longer than that.
 */
const YIELD_EVERY = 8;
/** Scan pages (up to 250 keys each) walked between two yields in the passes before deflating. */
const PAGES_PER_YIELD = 8;
const LOCAL = 2 ** 21;

/** Where the pack's entries are: parallel arrays indexed by entry number. */
interface Spans {
  readonly pages: Buffer[];
  readonly page: Uint32Array;
  readonly start: Uint32Array;
  readonly end: Uint32Array;
  readonly hash: Uint32Array;
}

function compareBytes(sp: Spans, x: number, y: number): number {
  const a = sp.pages[sp.page[x] as number] as Buffer;
  const b = sp.pages[sp.page[y] as number] as Buffer;
  return a.compare(b, sp.start[y], sp.end[y], sp.start[x], sp.end[x]);
}

/**
 * Orders one bucket's entries (indices `group`) by key hash, then by bytes, so equal content gives
 * equal chunks whatever order SCAN returned it in. Keys hash * 2^21 + place are exact in a double
 * and a Float64Array sorts natively, ~5x a comparator sort; a bucket crowded past 2^21 entries
 * takes the comparator.
 */
function orderBucket(sp: Spans, group: Uint32Array, scratch: Float64Array, orderArea: Uint32Array): void {
  const len = group.length;
  if (len > LOCAL) {
    group.sort((x, y) => (sp.hash[x] as number) - (sp.hash[y] as number) || compareBytes(sp, x, y));
    return;
  }
  const keys = scratch.subarray(0, len);
  for (let j = 0; j < len; j++) keys[j] = (sp.hash[group[j] as number] as number) * LOCAL + j;
  keys.sort();
  const order = orderArea.subarray(0, len);
  for (let j = 0; j < len; j++) order[j] = group[(keys[j] as number) % LOCAL] as number;
  // Equal hashes (rare) are ordered by their bytes.
  for (let j = 0; j < len; ) {
    let k = j + 1;
    while (k < len && sp.hash[order[k] as number] === sp.hash[order[j] as number]) k++;
    if (k - j > 1) order.subarray(j, k).sort((x, y) => compareBytes(sp, x, y));
    j = k;
  }
  group.set(order);
}

/**
 * Packs raw scan pages; `exact` says the expiries are absolute (see SCAN_STEP). Equality is decided
 * by SHA-256 of a bucket's ordered bytes, so a chunk can only look changed when it is, and the
 * scratch arrays are allocated once per pack, not per bucket, for the builder's RSS.
 */
export async function packChunked(pages: Buffer[], exact: boolean): Promise<Buffer> {
  const breathe = () => new Promise((r) => setImmediate(r));
  let entries = 0;
  for (let pi = 0; pi < pages.length; pi++) {
    if (pi % PAGES_PER_YIELD === PAGES_PER_YIELD - 1) await breathe();
    forEachEntry(pages[pi] as Buffer, () => void entries++);
  }
  const buckets = bucketsFor(entries);
  const mask = buckets - 1;
  const sp: Spans = { pages, page: new Uint32Array(entries), start: new Uint32Array(entries), end: new Uint32Array(entries), hash: new Uint32Array(entries) };
  const first = new Uint32Array(buckets + 1);
  let n = 0;
  for (let pi = 0; pi < pages.length; pi++) {
    if (pi % PAGES_PER_YIELD === PAGES_PER_YIELD - 1) await breathe();
    const p = pages[pi] as Buffer;
    forEachEntry(p, (kind, idAt, idEnd, s, e) => {
      const h = keyHash(p, kind, idAt, idEnd);
      sp.hash[n] = h;
      sp.page[n] = pi;
      sp.start[n] = s;
      sp.end[n] = e;
      first[(h & mask) + 1]!++;
      n++;
    });
  }
  let widest = 0;
  for (let b = 0; b < buckets; b++) {
    widest = Math.max(widest, first[b + 1] as number);
    first[b + 1] = (first[b] as number) + (first[b + 1] as number);
  }
  // Entry indices grouped by bucket (a counting sort).
  const grouped = new Uint32Array(entries);
  const fill = first.slice(0, buckets);
  for (let i = 0; i < entries; i++) grouped[fill[(sp.hash[i] as number) & mask]!++] = i;
  const scratch = new Float64Array(Math.min(widest, LOCAL));
  const orderArea = new Uint32Array(Math.min(widest, LOCAL));
  let rawMax = 0;
  for (let b = 0; b < buckets; b++) {
    let len = 0;
    for (let j = first[b] as number; j < (first[b + 1] as number); j++) len += (sp.end[grouped[j] as number] as number) - (sp.start[grouped[j] as number] as number);
    rawMax = Math.max(rawMax, len);
  }
  // Every reader would refuse such a bucket (see MAX_CHUNK_RAW), and rebuild: publish nothing.
  if (rawMax > MAX_CHUNK_RAW) throw new Error(`snapshot: a bucket of ${rawMax} bytes is past the ${MAX_CHUNK_RAW}-byte cap`);
  const rawArea = Buffer.allocUnsafe(rawMax);

  const head = Buffer.alloc(headerBytes(buckets));
  head.writeUInt32BE(MAGIC, 0);
  head.writeUInt8(exact ? FLAG_EXACT : 0, 4);
  head.writeUInt32BE(buckets, 8);
  head.writeUInt32BE(entries, 12);
  const chunks: Buffer[] = [];
  const endsAt = FIXED + buckets * DIGEST;
  let offset = 0;
  for (let b = 0; b < buckets; b++) {
    if (b % YIELD_EVERY === YIELD_EVERY - 1) await breathe();
    const group = grouped.subarray(first[b] as number, first[b + 1] as number);
    orderBucket(sp, group, scratch, orderArea);
    let at = 0;
    for (const e of group) at += (pages[sp.page[e] as number] as Buffer).copy(rawArea, at, sp.start[e] as number, sp.end[e] as number);
    const raw = rawArea.subarray(0, at);
    digest(raw).copy(head, FIXED + b * DIGEST);
    const chunk = at === 0 ? Buffer.alloc(0) : deflateRawSync(raw, { level: LEVEL });
    chunks.push(chunk);
    offset += chunk.length;
    head.writeUInt32BE(offset, endsAt + b * 4);
  }
  return Buffer.concat([head, ...chunks]);
}

/** The header of a packed snapshot of `total` bytes; throws on anything inconsistent. */
export function parseIndex(head: Buffer, total: number): ChunkIndex {
  if (head.length < FIXED || head.readUInt32BE(0) !== MAGIC) throw new Error('snapshot: not a chunked snapshot');
  const buckets = head.readUInt32BE(8);
  if (buckets < 1 || buckets > MAX_BUCKETS || (buckets & (buckets - 1)) !== 0) throw new Error('snapshot: bad bucket count');
  const bytes = headerBytes(buckets);
  if (head.length < bytes) throw new Error('snapshot: truncated header');
  const ends = new Uint32Array(buckets);
  let last = 0;
  for (let b = 0; b < buckets; b++) {
    const e = head.readUInt32BE(FIXED + buckets * DIGEST + b * 4);
    if (e < last) throw new Error('snapshot: bad chunk offsets');
    ends[b] = last = e;
  }
  if (bytes + last !== total) throw new Error('snapshot: length does not match its index');
  return {
    buckets,
    entries: head.readUInt32BE(12),
    exact: (head.readUInt8(4) & FLAG_EXACT) !== 0,
    digests: Buffer.from(head.subarray(FIXED, FIXED + buckets * DIGEST)),
    ends,
    headerBytes: bytes,
  };
}

export function chunkSpan(index: ChunkIndex, b: number): [number, number] {
  return [b === 0 ? 0 : (index.ends[b - 1] as number), index.ends[b] as number];
}

/**
 * The raw entries of bucket b from its deflated chunk; throws unless they match the digest.
 * `verify` false only for a chunk of the sidecar's own base, checked when it was read (or packed
 * here): a catch-up unpacks the base's changed buckets too, and checking them again was a quarter
 * of its digest and inflate time.
 */
export function unpackChunk(index: ChunkIndex, b: number, chunk: Buffer, verify = true): Buffer {
  const raw = chunk.length === 0 ? Buffer.alloc(0) : inflateRawSync(chunk, { maxOutputLength: MAX_CHUNK_RAW });
  if (verify && !digest(raw).equals(index.digests.subarray(b * DIGEST, (b + 1) * DIGEST))) throw new Error('snapshot: chunk does not match its digest');
  return raw;
}

/** Buckets whose content differs between two snapshots; undefined when they cannot be compared. */
export function changedBuckets(from: ChunkIndex, to: ChunkIndex): number[] | undefined {
  if (!from.exact || !to.exact || from.buckets !== to.buckets) return undefined;
  const out: number[] = [];
  for (let b = 0; b < to.buckets; b++) {
    if (to.digests.compare(from.digests, b * DIGEST, (b + 1) * DIGEST, b * DIGEST, (b + 1) * DIGEST) !== 0) out.push(b);
  }
  return out;
}
