import { describe, expect, it } from 'vitest';
import { SnapshotBase } from '../../src/state/snapshot-base.js';
import { packChunked, parseIndex, type ChunkIndex } from '../../src/state/snapshot-chunks.js';

/**
 * A catch-up keeps the chunks it read beside the area it has rather than copying every chunk into
 * a new one. What must hold over any run of catch-ups: each bucket gives the chunk read last for
 * it, and what the base keeps alive stays within a small multiple of what it holds.
 */
function held(base: SnapshotBase, buckets: number): { live: number; backing: number } {
  const seen = new Set<ArrayBufferLike>();
  let live = 0;
  let backing = 0;
  for (let b = 0; b < buckets; b++) {
    const c = base.chunk(b);
    live += c.length;
    if (!seen.has(c.buffer)) backing += c.buffer.byteLength;
    seen.add(c.buffer);
  }
  return { live, backing };
}

describe('the kept snapshot base', () => {
  it('after any run of catch-ups each bucket gives its latest chunk, and the memory held stays bounded', async () => {
    const pages = [Buffer.from(Array.from({ length: 20_000 }, (_, i) => `s${String(i).length + 2}:u-${i}${1_800_000_000_000 + i};`).join(''))];
    const packed = await packChunked(pages, true);
    const index = parseIndex(packed, packed.length);
    let base = SnapshotBase.of(index, packed.subarray(index.headerBytes));
    const want = Array.from({ length: index.buckets }, (_, b) => Buffer.from(base.chunk(b)));
    let areas = new Set([base.chunk(0).buffer]);
    let compactions = 0;
    for (let round = 0; round < 60; round++) {
      // Each catch-up reads a few buckets, as ioredis hands replies over: slices of one socket read
      // that also holds the reply framing.
      const fresh = new Map<number, Buffer>();
      const read = Buffer.allocUnsafeSlow(16_384);
      let at = 0;
      for (let k = 0; k < 1 + (round % 9); k++) {
        const b = (round * 37 + k * 101) % index.buckets;
        const chunk = Buffer.alloc(300 + ((round + k) % 5) * 70, round + k);
        chunk.copy(read, at + 16);
        fresh.set(b, read.subarray(at + 16, at + 16 + chunk.length));
        at += 16 + chunk.length;
        want[b] = chunk;
      }
      const next: ChunkIndex = { ...index, digests: Buffer.from(index.digests) };
      base = base.caughtUp(next, fresh);
      expect(base.index.digests).toBe(next.digests);
      for (let b = 0; b < index.buckets; b++) expect(base.chunk(b).equals(want[b] as Buffer)).toBe(true);
      const { live, backing } = held(base, index.buckets);
      // The area, plus at most half of it in kept reads, plus the last catch-up's read.
      expect(backing).toBeLessThanOrEqual(2 * live + read.length);
      const area = base.chunk(index.buckets - 1).buffer;
      if (!areas.has(area) && !fresh.has(index.buckets - 1)) compactions++;
      areas = new Set([area]);
    }
    // The copy into one area happens, but not on every catch-up.
    expect(compactions).toBeGreaterThanOrEqual(1);
    expect(compactions).toBeLessThan(30);
  });
});
