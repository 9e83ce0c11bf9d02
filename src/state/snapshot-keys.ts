/** Where the shared snapshot and its keeper live in Redis (snapshot.ts, snapshot-keeper.ts). */
export interface SnapshotKeys {
  readonly meta: string;
  readonly lease: string;
  /** Server µs of the latest resync's first poll: the keeper advances its watermark past it. */
  readonly arrival: string;
  /** The keeper's "<snapshot key> <watermark µs> <log length> <log key>" (snapshot-keeper.ts). */
  readonly logWatermark: string;
  staging(id: string): string;
  log(id: string): string;
}

/**
 * Each snapshot format has its own meta, snapshot, log and watermark keys: a sidecar of an earlier
 * release (ZTC1 chunks under zt_mirror:cmeta, one deflated stream under zt_mirror:zmeta, raw pages
 * under zt_mirror:meta) never reads one, nor this release one of theirs, and two releases' keepers
 * never overwrite each other's watermark during a rolling upgrade. The lease and the arrival key
 * are shared: the first keeps the two from scanning Redis at once, the second only makes a keeper
 * look sooner.
 */
export function snapshotKeys(prefix: string): SnapshotKeys {
  return {
    meta: `${prefix}zt_mirror:c2meta`,
    lease: `${prefix}zt_mirror:lease`,
    arrival: `${prefix}zt_mirror:zarrival`,
    logWatermark: `${prefix}zt_mirror:c2logw`,
    staging: (id) => `${prefix}zt_mirror:c2snap:${id}`,
    log: (id) => `${prefix}zt_mirror:c2log:${id}`,
  };
}
