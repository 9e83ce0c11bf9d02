/**
 * A sidecar's CPU to apply an incremental catch-up, after the changed chunks are read: inflate the
 * base's and the new chunks of the changed buckets, work out what to remove and add, decode it
 * and apply it to a filled mirror the way the resync does (decoded in full, then applied in one
 * step). Two ways in the same run, on the same snapshots: replacing each changed bucket whole
 * (every entry of both versions decoded and applied: what a catch-up did before bucket-delta.ts)
 * and applying only the entries that differ. Medians of the rounds; the ratio is what to read.
 *
 *   npm run build && node dist/bench/catch-up-cpu.js [--entries 100000,1000000] [--changes 100,500,5000] [--rounds 5]
 */
import { bucketDelta } from '../src/state/bucket-delta.js';
import { Mirror } from '../src/state/mirror.js';
import { changedBuckets, chunkSpan, packChunked, parseIndex, unpackChunk, type ChunkIndex } from '../src/state/snapshot-chunks.js';
import { decodePages } from '../src/state/snapshot.js';
import { median } from './lib/stats.js';

function list(name: string, dflt: number[]): number[] {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : String(process.argv[i + 1]).split(',').map(Number);
}
const ENTRIES = list('entries', [100_000, 1_000_000]);
const CHANGES = list('changes', [100, 500, 5000]);
const ROUNDS = list('rounds', [5])[0] as number;
const EXP = 1_800_000_000_000;

/** Scan-sized pages of the bench's blocked addresses, one in ten a suspended user; `skip` left out. */
function pages(n: number, skip: Set<number>): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < n; at += 250) {
    let s = '';
    for (let j = at; j < Math.min(n, at + 250); j++) {
      if (skip.has(j)) continue;
      const id = j % 10 === 9 ? `user-${j}` : `10.${(j >> 16) & 255}.${(j >> 8) & 255}.${j & 255}`;
      s += `${j % 10 === 9 ? 's' : 'i'}${id.length}:${id}${EXP + j};`;
    }
    out.push(Buffer.from(s));
  }
  return out;
}

interface Snap {
  readonly index: ChunkIndex;
  readonly chunks: Buffer;
}
async function snap(p: Buffer[]): Promise<Snap> {
  const packed = await packChunked(p, true);
  const index = parseIndex(packed, packed.length);
  return { index, chunks: packed.subarray(index.headerBytes) };
}
const raw = (s: Snap, b: number) => unpackChunk(s.index, b, s.chunks.subarray(...chunkSpan(s.index, b)), false);

/** Decoded in full, then applied: as the resync does it, so a decode that throws applies nothing. */
function apply(m: Mirror, removed: Buffer[], added: Buffer[]): number {
  const changes: (() => void)[] = [];
  decodePages(removed, 0, { add: (kind, id) => void changes.push(kind === 'suspended_user' ? () => m.setSuspended(id, undefined) : () => m.setBlockedIp(id, undefined)) });
  decodePages(added, 0, { add: (kind, id, exp) => void changes.push(kind === 'suspended_user' ? () => m.setSuspended(id, exp) : () => m.setBlockedIp(id, exp)) });
  for (const c of changes) c();
  return changes.length;
}

function catchUp(m: Mirror, from: Snap, to: Snap, changed: number[], delta: boolean): { ms: number; applied: number } {
  const t = process.hrtime.bigint();
  const removed: Buffer[] = [];
  const added: Buffer[] = [];
  for (const b of changed) {
    const before = raw(from, b);
    const after = unpackChunk(to.index, b, to.chunks.subarray(...chunkSpan(to.index, b)));
    if (!delta) {
      removed.push(before);
      added.push(after);
      continue;
    }
    bucketDelta(before, after, removed, added);
  }
  const applied = apply(m, removed, added);
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, applied };
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(`# catch-up CPU per sidecar, ${process.version}, median of ${ROUNDS} rounds; whole: each changed bucket replaced whole (before), delta: only the entries that differ`);
console.log('| entries | keys changed | buckets changed | whole ms | whole entries applied | delta ms | delta entries applied | delta / whole |');
console.log('|---|---|---|---|---|---|---|---|');
for (const n of ENTRIES) {
  const basePages = pages(n, new Set());
  const base = await snap(basePages);
  for (const c of CHANGES) {
    // Half deleted, half with a new expiry: what a restart storm's away-writes do to the buckets.
    const skip = new Set<number>();
    while (skip.size < c / 2) skip.add(Math.floor(Math.random() * n));
    const next = pages(n, skip);
    for (let k = 0; k < c / 2; k++) {
      const j = Math.floor(Math.random() * n);
      const p = next[Math.floor(j / 250)] as Buffer;
      next[Math.floor(j / 250)] = Buffer.from(p.toString().replace(`${EXP + j};`, `${EXP + j + 1};`));
    }
    const to = await snap(next);
    const changed = changedBuckets(base.index, to.index) ?? [];
    const times = { whole: [] as number[], delta: [] as number[] };
    const applied = { whole: 0, delta: 0 };
    for (let r = 0; r < ROUNDS; r++) {
      for (const way of ['whole', 'delta'] as const) {
        // A fresh mirror of the base each time: a catch-up applies to the mirror its base built.
        const m = new Mirror();
        decodePages(basePages, 0, { add: (kind, id, exp) => (kind === 'suspended_user' ? m.setSuspended(id, exp) : m.setBlockedIp(id, exp)) });
        const x = catchUp(m, base, to, changed, way === 'delta');
        times[way].push(x.ms);
        applied[way] = x.applied;
      }
    }
    const whole = median(times.whole);
    const delta = median(times.delta);
    console.log(`| ${fmt(n)} | ${fmt(c)} | ${fmt(changed.length)} of ${fmt(base.index.buckets)} | ${fmt(whole, 1)} | ${fmt(applied.whole)} | ${fmt(delta, 1)} | ${fmt(applied.delta)} | ${fmt(delta / whole, 2)} |`);
  }
}
