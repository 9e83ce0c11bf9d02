import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Script } from './lua-script.js';
import type { SnapshotKeys } from './snapshot-keys.js';
import { KEEP, REFRESH, UNKEEP } from './snapshot-scripts.js';

const keep = new Script(KEEP);
const refresh = new Script(REFRESH);
const unkeep = new Script(UNKEEP);

/** How often the keeper looks for resyncs that arrived after its watermark. */
const TICK_MS = 50;
/**
 * A keeper that stops answering is given up this long after its last word: readers then build.
 * 3 s was too short for a keeper sharing a process with 124 other sidecars in a million-entry
 * restart storm (bench/state-scale.ts: a no_keeper build while no keeper had stopped); a keeper
 * that dies costs the resyncs waiting on it at most this long.
 */
export const WATERMARK_TTL_MS = 6_000;
const REFRESH_MS = 1_000;
/** How long a stop waits for the tick in progress before it withdraws the watermark. */
const STOP_WAIT_MS = 2_000;
/** Advances that have not got a watermark out for this long no longer keep the last one alive. */
const ADVANCE_REFRESH_MS = 4_000;
/** The log outlives its keeper long enough for a reader that was just told of it to read it. */
const LOG_TTL_MS = 60_000;
/**
 * Past this many distinct keys every reader would re-read more than a fresh build is worth to
 * it, and the keeper stops (keys an attacker can name through auto-remediation end up here too).
 */
export const LOG_MAX_KEYS = 5_000;
/** Keys per script call (Lua's unpack has a stack limit, and one call should stay short). */
const APPEND_PAGE = 500;

export interface KeeperDeps {
  readonly conn: Redis;
  readonly keys: SnapshotKeys;
  /**
   * Resolves true once every invalidation Redis queued for this sidecar before the call has been
   * handed to record(); false if the subscriber changed or failed meanwhile; 'timeout' if its
   * PING timed out on a subscriber still open (nothing is known: try again).
   */
  barrier(): Promise<boolean | 'timeout'>;
  /** False once this sidecar's tracking was disrupted after the snapshot's build began. */
  intact(): boolean;
  onStop?(why: KeeperStop): void;
}

/** Why a keeper stopped (a metric label): after any of these the next resync builds. */
export type KeeperStop = 'log_full' | 'tracking_disrupted' | 'snapshot_replaced' | 'log_lost' | 'newer_build' | 'closing';

/**
 * Keeps the snapshot this sidecar built usable by resyncs that start after it: a resync needs a
 * snapshot begun after its own tracking was on, so without this every wave of a restart storm,
 * and every pod that starts, waited for a new build (3.3-4.1 s of Redis time at a million
 * entries, bench/state-scale.ts).
 *
 * Why it holds: the builder's tracking was on before its scan began, so every key written since
 * then reaches record() as an invalidation; those are the only keys the snapshot can hold wrong.
 * The keeper appends them to a log and publishes a watermark W, a server time taken with TIME
 * before a PING on its own subscriber connection: Redis queues a write's broadcast invalidation
 * before the replies of the same event-loop turn go out, so every write executed before W was
 * queued on the subscriber ahead of the PONG, and so recorded once the PONG is read. A resync
 * whose tracking went on before W's server time (its first poll, `after` < W) takes the snapshot
 * and re-reads the log's first <length> keys after applying it: every other key is as the
 * snapshot says, and every later write is its own invalidation. Server times are compared on
 * one server run only, as for the snapshot's own start.
 */
export class SnapshotKeeper {
  private readonly logKey: string;
  /** The log's first entry, which only this keeper writes (see KEEP). */
  private readonly header: string;
  /** Until an append succeeded, the log may be created. */
  private created = false;
  /** Every key queued or appended so far: a key is logged once. */
  private readonly logged = new Set<string>();
  private queue: string[] = [];
  private watermark = 0;
  private refreshedAt = 0;
  /** The tick in progress, which a stop waits for before it withdraws the watermark. */
  private inflight: Promise<void> | undefined;
  /** A watermark refresh sent while an advance is in progress. */
  private refreshing: Promise<void> | undefined;
  private advancing = false;
  /** When the keeper first tried to advance without having managed since (-Infinity: none pending). */
  private pendingSince = -Infinity;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    /** The published snapshot's key. */
    private readonly snapshot: string,
    /** Keys invalidated since before the build began. */
    since: Iterable<string>,
    private readonly d: KeeperDeps,
  ) {
    const id = randomUUID();
    this.logKey = d.keys.log(id);
    this.header = `keeper:${id}`;
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
    for (const k of since) this.record(k);
  }

  get active(): boolean {
    return !this.stopped;
  }

  /** Keys this keeper has logged (tests and benches). */
  get size(): number {
    return this.logged.size;
  }

  /**
   * A key dropped here (the log is full) stops the keeper at once, and nothing is appended or
   * published after that: an advance whose PONG follows this call checks `stopped` first.
   */
  record(key: string): void {
    if (this.stopped || this.logged.has(key)) return;
    if (this.logged.size >= LOG_MAX_KEYS) return void this.stop('log_full');
    this.logged.add(key);
    this.queue.push(key);
  }

  /**
   * Resolves once the watermark is withdrawn (or that failed): readers then build at once. A
   * tick in progress finishes first (it publishes nothing more once stopped; a KEEP already sent
   * would otherwise land after the withdrawal and leave readers waiting on a keeper that is gone).
   * The wait is bounded (a closing store must not hang on a tick): a KEEP that lands after the
   * withdrawal anyway publishes a watermark that is true, which lapses within WATERMARK_TTL_MS.
   */
  stop(why: KeeperStop): Promise<void> {
    if (this.stopping !== undefined) return this.stopping;
    this.stopped = true;
    clearInterval(this.timer);
    this.d.onStop?.(why);
    const withdraw = () => unkeep.run(this.d.conn, [this.d.keys.logWatermark], [this.snapshot]).then(() => undefined);
    let bound: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((res) => (bound = setTimeout(res, STOP_WAIT_MS)));
    this.stopping = Promise.race([this.inflight ?? Promise.resolve(), waited])
      .catch(() => undefined)
      .finally(() => clearTimeout(bound))
      .then(withdraw)
      .catch(() => undefined);
    return this.stopping;
  }

  private tick(): void {
    if (this.stopped) return;
    if (!this.d.intact()) return void this.stop('tracking_disrupted');
    if (this.inflight === undefined) this.inflight = this.step().finally(() => (this.inflight = undefined));
    else if (this.refreshing === undefined && Date.now() - this.refreshedAt >= REFRESH_MS && this.advancing && Date.now() - this.pendingSince < ADVANCE_REFRESH_MS) {
      // An advance can take seconds in a busy process (a restart storm): its watermark lapsing
      // meanwhile would send every waiting resync to build a snapshot of its own. Only an advance
      // under way, and not for long: a keeper whose advances keep failing must let its watermark go.
      this.refreshing = refresh
        .run(this.d.conn, [this.d.keys.meta, this.d.keys.logWatermark, this.logKey], [this.snapshot, WATERMARK_TTL_MS, LOG_TTL_MS, this.header, this.created ? '1' : '0'])
        .then((ok) => {
          if (Number(ok) === 1) this.refreshedAt = Date.now();
        })
        .catch(() => undefined)
        .finally(() => (this.refreshing = undefined));
    }
  }

  private async step(): Promise<void> {
    try {
      const arrival = Number((await this.d.conn.get(this.d.keys.arrival)) ?? 0);
      if (arrival >= this.watermark) await this.advance();
      else if (Date.now() - this.refreshedAt >= REFRESH_MS) await this.append('');
    } catch {
      // A slow or lost Redis: the next tick tries again, and a watermark not refreshed expires.
    }
  }

  private async advance(): Promise<void> {
    this.advancing = true;
    if (this.pendingSince === -Infinity) this.pendingSince = Date.now();
    try {
      await this.advanceNow();
    } finally {
      this.advancing = false;
    }
  }

  private async advanceNow(): Promise<void> {
    const [sec, usec] = await this.d.conn.time();
    const w = Number(sec) * 1e6 + Number(usec);
    const barrier = await this.d.barrier();
    // Timed out on a connection still up: no watermark this time, the next tick tries again.
    if (barrier === 'timeout' && this.d.intact()) return;
    if (barrier !== true || !this.d.intact()) return void this.stop('tracking_disrupted');
    // Every key of a write before W has now been through record(); if one was dropped, stop.
    if (this.stopped) return;
    await this.append(w.toFixed(0));
    this.watermark = w;
    this.pendingSince = -Infinity;
  }

  /** Appends the queued keys; the last call publishes the watermark with the log's new length. */
  private async append(watermark: string): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    try {
      for (let at = 0; at === 0 || at < batch.length; at += APPEND_PAGE) {
        if (this.stopped) return;
        const page = batch.slice(at, at + APPEND_PAGE);
        const last = at + APPEND_PAGE >= batch.length;
        const args = [this.snapshot, last ? watermark : '', LOG_TTL_MS, WATERMARK_TTL_MS, this.header, this.created ? '0' : '1', ...page];
        const ok = await keep.run(this.d.conn, [this.d.keys.meta, this.d.keys.logWatermark, this.logKey], args);
        if (Number(ok) !== 1) return void this.stop(Number(ok) === 0 ? 'snapshot_replaced' : 'log_lost');
        this.created = true;
      }
      this.refreshedAt = Date.now();
    } catch (err) {
      // Appended or not, the keys go again (a key logged twice is re-read twice, nothing worse);
      // no watermark went out without all of them.
      this.queue = batch.concat(this.queue);
      throw err;
    }
  }
}
