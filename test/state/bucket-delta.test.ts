import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bucketDelta } from '../../src/state/bucket-delta.js';
import { Mirror, type StateMirror } from '../../src/state/mirror.js';
import { changedBuckets, chunkSpan, forEachEntry, packChunked, parseIndex, unpackChunk } from '../../src/state/snapshot-chunks.js';
import { decodePages, type SnapshotSink } from '../../src/state/snapshot.js';

/**
 * A catch-up removes and adds only the entries that differ inside each changed bucket. These check
 * what must hold: the delta cuts each side at its own entry boundaries (ids can hold bytes that
 * look like entries), what it leaves in place is the same in both, in bucket order it moves only
 * the differences, and a mirror caught up by deltas is the mirror a full read of the new snapshot
 * gives, spellings of one address included.
 */
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 300);

/** The entry encoding of snapshot-scripts.ts; lengths are byte counts. */
function entry(kind: string, id: string, exp: number, score?: string): string {
  const head = `${kind}${Buffer.byteLength(id)}:${id}${exp}`;
  return score === undefined ? `${head};` : `${head},${Buffer.byteLength(score)}:${score};`;
}

function entries(buf: Buffer): string[] {
  const out: string[] = [];
  forEachEntry(buf, (_k, _a, _b, s, e) => out.push(buf.toString('latin1', s, e)));
  return out;
}

/** Ids drawn mostly from the format's own bytes, some ending in a whole entry, so an id often looks like entries. */
const formatBytes = fc.string({ unit: fc.constantFrom('s', 'i', 'r', '1', '2', '9', ':', ';', ',', '-', 'a', 'é'), minLength: 1, maxLength: 12 });
const trickyId = fc.oneof(formatBytes, fc.tuple(formatBytes, formatBytes, fc.integer({ min: -1, max: 9 })).map(([pre, id, exp]) => pre + entry('s', id, exp).slice(0, -1)));
const anyEntry = fc.oneof(
  fc.tuple(fc.constantFrom('s', 'i', 'c'), trickyId, fc.integer({ min: -1, max: 99 })).map(([k, id, exp]) => entry(k, id, exp)),
  fc.tuple(trickyId, fc.integer({ min: -1, max: 99 }), trickyId).map(([id, exp, score]) => entry('r', id, exp, score)),
);

/** Into a mirror as the resync's decoder puts entries in (or, with `remove`, takes them out). */
const into = (m: StateMirror, remove = false): SnapshotSink => ({
  add(kind, id, exp, score) {
    const e = remove ? undefined : exp;
    if (kind === 'suspended_user') m.setSuspended(id, e);
    else if (kind === 'blocked_ip') m.setBlockedIp(id, e);
    else if (kind === 'blocked_cidr') m.setBlockedCidr(id, e);
    else m.setRisk(id, e === undefined ? undefined : { score: Number(score), expiresAtMs: e });
  },
});

describe('bucket delta', () => {
  /** Each piece's entries, after checking it begins and ends on an entry boundary of its side. */
  function piecesOf(side: Buffer, pieces: Buffer[]): string[] {
    const bounds = new Set([0]);
    forEachEntry(side, (_k, _a, _b, _s, e) => void bounds.add(e));
    return pieces.flatMap((p) => {
      expect(p.buffer === side.buffer && bounds.has(p.byteOffset - side.byteOffset) && bounds.has(p.byteOffset - side.byteOffset + p.length)).toBe(true);
      return entries(p);
    });
  }

  /** a minus b, as multisets of entries. */
  function minus(a: string[], b: string[]): string[] {
    const left = [...b];
    return a.filter((e) => {
      const at = left.indexOf(e);
      if (at < 0) return true;
      left.splice(at, 1);
      return false;
    });
  }

  it('in any order of entries: removed and added are whole entries of their side, and what stays is the same in both', () => {
    fc.assert(
      fc.property(fc.array(anyEntry, { maxLength: 30 }), fc.array(fc.tuple(fc.nat(), fc.nat(3), fc.array(anyEntry, { maxLength: 3 })), { maxLength: 4 }), (base, edits) => {
        const next = [...base];
        for (const [at, drop, insert] of edits) next.splice(at % (next.length + 1), drop, ...insert);
        const before = Buffer.from(base.join(''));
        const after = Buffer.from(next.join(''));
        const removed: Buffer[] = [];
        const added: Buffer[] = [];
        bucketDelta(before, after, removed, added);
        const gone = piecesOf(before, removed);
        const come = piecesOf(after, added);
        expect(minus(entries(before), gone).sort()).toEqual(minus(entries(after), come).sort());
        if (before.equals(after)) expect(removed.length + added.length).toBe(0);
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('does not cut where the shared tail starts inside an entry of one side, though its bytes there look like an entry', () => {
    // The last 7 bytes are equal, and in `before` they begin an entry; in `after` they end an id.
    const before = Buffer.from(entry('s', 'b', 1) + entry('s', 'a', 1));
    const after = Buffer.from(entry('s', ';s1:a', 1));
    expect(after.subarray(-7).equals(before.subarray(-7))).toBe(true);
    const removed: Buffer[] = [];
    const added: Buffer[] = [];
    bucketDelta(before, after, removed, added);
    expect(piecesOf(before, removed)).toEqual(entries(before));
    expect(piecesOf(after, added)).toEqual(entries(after));
  });

  it('a key the old snapshot held twice (SCAN may return a key twice) stays listed when the new one holds it once', () => {
    const m = new Mirror();
    const twice = Buffer.from(entry('s', 'a', -1) + entry('s', 'a', -1));
    decodePages([twice], 0, into(m));
    const removed: Buffer[] = [];
    const added: Buffer[] = [];
    bucketDelta(twice, Buffer.from(entry('s', 'a', -1)), removed, added);
    decodePages(removed, 0, into(m, true));
    decodePages(added, 0, into(m));
    expect(m.isSuspended('a', Date.now())).toBe(true);
  });

  it('refuses a side that is not whole entries instead of guessing', () => {
    expect(() => bucketDelta(Buffer.from(entry('s', 'a', 1)), Buffer.from('s1:b1'), [], [])).toThrow(/truncated/);
  });

  it('refuses a length that is not digits (a planted chunk), where a negative one would walk back and never end', () => {
    // "-3" read as a length would point back at the ';' of the entry before it.
    const planted = Buffer.from(entry('s', 'a', 1) + 's-3:x1;');
    expect(() => bucketDelta(Buffer.from(entry('s', 'a', 1)), planted, [], [])).toThrow(/bad entry length/);
    expect(() => bucketDelta(Buffer.from(entry('r', 'a', 1, '0.5')), Buffer.from('r1:a1,-9:0.5;'), [], [])).toThrow(/bad entry length/);
    // The full read this falls back to refuses it too, rather than decoding an entry forever.
    expect(() => decodePages([planted], 0, { add: () => undefined })).toThrow(/bad digit/);
  });

  it('a mirror caught up by deltas equals one read from the new snapshot in full, for every key and time', async () => {
    const NOW = 1_000_000;
    const EXPIRIES = [-1, 1000, 2000, 3000].map((e) => (e < 0 ? -1 : NOW + e));
    const users = Array.from({ length: 40 }, (_, i) => (i % 7 === 0 ? `u;${i}:s3:x-1;` : `user-${i}`));
    // Spellings of one address: the delta must never unblock the one left untouched.
    const ips = Array.from({ length: 60 }, (_, i) => [`10.0.0.${i}`, `::ffff:10.0.0.${i}`, `2001:DB8::${i.toString(16)}`, `2001:db8::${i.toString(16)}`]).flat();
    const cidrs = Array.from({ length: 10 }, (_, i) => `10.${i}.0.0/16`);
    type Row = [kind: string, id: string];
    const universe: Row[] = [...users.map((u): Row => ['s', u]), ...users.map((u): Row => ['r', u]), ...ips.map((ip): Row => ['i', ip]), ...cidrs.map((c): Row => ['c', c])];
    const state = fc.array(fc.option(fc.tuple(fc.constantFrom(...EXPIRIES), fc.constantFrom('0.1', '0.5', '0.9')), { nil: undefined, freq: 2 }), { minLength: universe.length, maxLength: universe.length });
    /** `twice`: keys the scan returned twice, as SCAN may (the builder does not dedupe). */
    const pagesOf = (s: ([number, string] | undefined)[], twice: boolean[] = []) => {
      const parts: string[] = [];
      s.forEach((v, i) => {
        if (v === undefined) return;
        const [kind, id] = universe[i] as Row;
        const e = entry(kind, id, v[0], kind === 'r' ? v[1] : undefined);
        parts.push(e);
        if (twice[i] === true) parts.push(e);
      });
      // Pages of a few entries, as the scan returns them, in scan (not bucket) order.
      const out: Buffer[] = [];
      for (let at = 0; at < parts.length; at += 7) out.push(Buffer.from(parts.slice(at, at + 7).join('')));
      return out;
    };
    const full = (pages: Buffer[]) => {
      const m = new Mirror();
      decodePages(pages, 0, into(m));
      return m;
    };
    const observe = (m: Mirror) =>
      [0.5, 1.5, 2.5, 3.5].map((s) => {
        const t = NOW + s * 1000;
        return [users.map((u) => `${m.isSuspended(u, t)}/${m.riskScore(u, t)}`), ips.map((ip) => m.isIpBlocked(ip, t)), cidrs.map((c) => m.isIpBlocked(c.replace('0/16', '7'), t))];
      });

    await fc.assert(
      fc.asyncProperty(state, state, fc.array(fc.integer({ min: 0, max: 19 }).map((n) => n === 0), { minLength: universe.length, maxLength: universe.length }), async (was, now, twice) => {
        const oldPages = pagesOf(was, twice);
        const newPages = pagesOf(now);
        const oldPacked = await packChunked(oldPages, true);
        const newPacked = await packChunked(newPages, true);
        const oi = parseIndex(oldPacked, oldPacked.length);
        const ni = parseIndex(newPacked, newPacked.length);
        // Under 4,096 entries both have 16 buckets, so they always compare.
        const changed = changedBuckets(oi, ni);
        expect(changed).toBeDefined();
        const m = full(oldPages);
        const removed: Buffer[] = [];
        const added: Buffer[] = [];
        for (const b of changed ?? []) {
          const before = unpackChunk(oi, b, oldPacked.subarray(oi.headerBytes).subarray(...chunkSpan(oi, b)));
          const after = unpackChunk(ni, b, newPacked.subarray(ni.headerBytes).subarray(...chunkSpan(ni, b)));
          const gone: Buffer[] = [];
          const come: Buffer[] = [];
          bucketDelta(before, after, gone, come);
          // Every difference moves; what else moves is the rest of its hash group.
          const g = piecesOf(before, gone);
          const c = piecesOf(after, come);
          expect(minus(minus(entries(before), entries(after)), g)).toEqual([]);
          expect(minus(minus(entries(after), entries(before)), c)).toEqual([]);
          removed.push(...gone);
          added.push(...come);
        }
        // As the resync applies them: every removal, then every addition.
        decodePages(removed, 0, into(m, true));
        decodePages(added, 0, into(m));
        expect(observe(m)).toEqual(observe(full(newPages)));
      }),
      { numRuns: RUNS },
    );
  });
});
