import { chunkSpan, type ChunkIndex } from './snapshot-chunks.js';

/**
 * What a sidecar keeps of the snapshot its mirror was built from (~8.5 B per entry at 1,000,000):
 * the digests to compare the next one with, and every bucket's deflated chunk. A catch-up keeps
 * the chunks it read beside the area it has instead of copying all 4,096 into a fresh one: on
 * this machine writing 8.4 MB of new memory costs ~22 ms in page faults alone, and that copy was
 * the largest part of a million-entry catch-up's CPU (1.09 s of 40 sidecars' storm profile,
 * against 0.10 s for all their inflates). What the kept chunks hold on to (a reply can be a
 * slice of a larger socket read) is counted, and past half the area everything is copied into
 * one new area once.
 */
export class SnapshotBase {
  private constructor(
    /** The digests of the snapshot the mirror holds: what the next one is compared with. */
    readonly index: ChunkIndex,
    private readonly area: Buffer,
    /** Where each chunk is within `area` (the snapshot the area was read from). */
    private readonly areaIndex: ChunkIndex,
    /** Chunks read since, by bucket, in place of the area's. */
    private readonly patched: ReadonlyMap<number, Buffer>,
  ) {}

  /** A snapshot read or packed whole: `chunks` is its chunk area, laid out as `index` says. */
  static of(index: ChunkIndex, chunks: Buffer): SnapshotBase {
    return new SnapshotBase(index, chunks, index, new Map());
  }

  chunk(b: number): Buffer {
    return this.patched.get(b) ?? this.area.subarray(...chunkSpan(this.areaIndex, b));
  }

  /** The base once a catch-up to the snapshot `index` has read its changed buckets' chunks. */
  caughtUp(index: ChunkIndex, fresh: ReadonlyMap<number, Buffer>): SnapshotBase {
    const patched = new Map(this.patched);
    for (const [b, c] of fresh) patched.set(b, c);
    if (heldBytes(patched.values()) <= this.area.length / 2) return new SnapshotBase(index, this.area, this.areaIndex, patched);
    const parts: Buffer[] = [];
    const ends = new Uint32Array(index.buckets);
    let end = 0;
    for (let b = 0; b < index.buckets; b++) {
      const c = patched.get(b) ?? this.area.subarray(...chunkSpan(this.areaIndex, b));
      parts.push(c);
      ends[b] = end += c.length;
    }
    return SnapshotBase.of({ ...index, ends }, Buffer.concat(parts, end));
  }
}

/** The memory the chunks keep alive: each distinct backing store once, whole. */
function heldBytes(chunks: Iterable<Buffer>): number {
  const seen = new Set<ArrayBufferLike>();
  let n = 0;
  for (const c of chunks) {
    if (seen.has(c.buffer)) continue;
    seen.add(c.buffer);
    n += c.buffer.byteLength;
  }
  return n;
}
