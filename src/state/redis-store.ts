import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { StateConfig } from '../config/schema/state.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { StateHealth, StateStore } from './types.js';
import { canonicalIp } from '../ip.js';
import { KeySpace, parseStoredScore, type ListKind } from './keys.js';
import type { MirrorBuilder, RiskEntry, StateMirror } from './mirror.js';
import { adminBlock, adminRisk, adminSuspend, adminUnblock, adminUnsuspend } from './redis-admin.js';
import { replyErrorKind } from './redis-errors.js';
import { createDataClient, createNodeClient, describeTarget, type DataClient, type NodeAddress } from './redis-conn.js';
import { dataPersistence, mayConfigGet, PERSISTENCE_MODES, type PersistenceMode } from './redis-persistence.js';
import { WakeablePublishWaiter } from './publish-waiter.js';
import { RedisRemediator, type SecurityAlert } from './remediation.js';
import { decodePages, freshSnapshot, scanNode, snapshotKeys, type LoadedSnapshot, type SnapshotBase, type SnapshotKeys, type SnapshotSink } from './snapshot.js';
import { SnapshotKeeper } from './snapshot-keeper.js';
import { TrackingChannel } from './tracking-channel.js';
import { MirroredStateView, type ListName } from './view.js';

type KeyValue = number | RiskEntry | undefined;
/**
 * Heartbeats between full verifications of the data connection and tracking state. The cost that
 * a fleet puts on Redis in steady state is all heartbeats: measured with bench/state-scale.ts (50
 * sidecars, 100k entries), a PING ~1.5 µs of command time, CLIENT TRACKINGINFO ~10 µs; every 10th
 * beat gave 91 + 59 = 150 µs/sidecar/min, every 30th ~110. Tracking is only lost with one of its two
 * connections closing (seen at once), so this check is a backstop, not the detection path.
 */
const VERIFY_EVERY = 10;
/**
 * Invalidations arriving within this window are re-read together: a burst (a bulk import, a SET
 * then EXPIRE) costs one pipelined round trip, and a key changed twice is read once. Small next
 * to the 100 ms write -> enforced budget.
 */
const COALESCE_MS = 5;
/** Keys per pipelined read, so one huge burst does not become one huge reply. */
const READ_CHUNK = 1000;
/** A timed-out re-read is sent again this many times before the mirror is declared out of sync. */
const READ_RETRIES = 2;
/** Bounds on what a failed resync hands the next attempt (see `carry`). */
const CARRY_MAX_AGE_MS = 120_000;
const CARRY_MAX_KEYS = 100_000;
/** Past this many keys changed since its base, a sidecar drops the base: its next resync reads all. */
const TOUCHED_MAX_KEYS = 100_000;

function snapshotSink(b: MirrorBuilder): SnapshotSink {
  return {
    add(kind, id, exp, score) {
      if (kind === 'user_risk') b.addRisk(id, parseStoredScore(score ?? null), exp);
      else if (kind === 'suspended_user') b.addSuspended(id, exp);
      else if (kind === 'blocked_ip') b.addBlockedIp(id, exp);
      else b.addBlockedCidr(id, exp);
    },
  };
}

/** Fills a resync's builder from the snapshot pages (expiry in local time: add offsetMs). */
export type SnapshotDecoder = (pages: Buffer[], offsetMs: number, into: MirrorBuilder) => void;

const decodeInto: SnapshotDecoder = (pages, offsetMs, into) => void decodePages(pages, offsetMs, snapshotSink(into));

/** The live mirror as a builder: a catch-up writes the changed buckets' entries straight into it. */
function writingTo(m: StateMirror): MirrorBuilder {
  return {
    addSuspended: (sub, exp) => m.setSuspended(sub, exp),
    addBlockedIp: (ip, exp) => m.setBlockedIp(ip, exp),
    addBlockedCidr: (cidr, exp) => m.setBlockedCidr(cidr, exp),
    addRisk: (sub, score, exp) => m.setRisk(sub, { score, expiresAtMs: exp }),
  };
}

/** A builder that queues each call on `into` instead of making it. */
function deferred(to: MirrorBuilder, into: (() => void)[]): MirrorBuilder {
  return {
    addSuspended: (sub, exp) => void into.push(() => to.addSuspended(sub, exp)),
    addBlockedIp: (ip, exp) => void into.push(() => to.addBlockedIp(ip, exp)),
    addBlockedCidr: (cidr, exp) => void into.push(() => to.addBlockedCidr(cidr, exp)),
    addRisk: (sub, score, exp) => void into.push(() => to.addRisk(sub, score, exp)),
  };
}

/** ...and one that removes each entry it is given. */
function removingFrom(m: StateMirror): MirrorBuilder {
  return {
    addSuspended: (sub) => m.setSuspended(sub, undefined),
    addBlockedIp: (ip) => m.setBlockedIp(ip, undefined),
    addBlockedCidr: (cidr) => m.setBlockedCidr(cidr, undefined),
    addRisk: (sub) => m.setRisk(sub, undefined),
  };
}

const ALERTS_READ_TIMEOUT_MS = 500;

/** Other tools write security_alerts too: anything that is not a JSON object is skipped. */
function parseAlert(row: string): SecurityAlert[] {
  try {
    const v: unknown = JSON.parse(row);
    return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { type?: unknown }).type === 'string' ? [v as SecurityAlert] : [];
  } catch {
    return [];
  }
}

/**
 * Redis-backed state. The hot path reads only the in-process mirror; Redis keeps it current with
 * client-side tracking invalidations (BCAST, RESP2 subscriber) per master, plus a full resync at
 * start, after every reconnect or stall and on FLUSH (and every resync_interval_s if set). A
 * single Redis serves the resync from a snapshot shared by every sidecar (see snapshot.ts); a
 * cluster is read node by node with the same scan-step script.
 */
export class RedisStateStore extends MirroredStateView implements StateStore {
  private readonly keys: KeySpace;
  private readonly snapKeys: SnapshotKeys;
  /** Identifies this sidecar's snapshot lease across its resyncs. */
  private readonly leaseId = randomUUID();
  /** Woken by the invalidation of the snapshot's meta key (a single Redis tracks it too). */
  private readonly publishWaiter = new WakeablePublishWaiter();
  private readonly data: DataClient;
  private readonly channels = new Map<string, TrackingChannel>();
  private readonly remediator: RedisRemediator;
  private readonly failClosedBoundMs: number;

  /** The mirror reflects Redis and every channel is delivering invalidations. */
  private inSync = false;
  private everSynced = false;
  /** Last moment the mirror was known to match Redis. */
  private lastSyncedAtMs = 0;
  private readonly createdAtMs = Date.now();
  /** Bumped on every disruption, so a resync that overlapped one does not claim to be in sync. */
  private epoch = 0;
  private resyncing: Promise<void> | undefined;
  /** Where the last resync's snapshot came from (shared: read whole from Redis; incremental: only what changed since the base; built: scanned here). */
  lastSnapshotSource: 'shared' | 'built' | 'incremental' | undefined;
  /** Bytes of the published snapshot the last resync read (0 when it built its own). */
  lastSnapshotBytes = 0;
  /** Keys from a keeper's log the last resync re-read; undefined when its snapshot began after it did. */
  lastLogKeys: number | undefined;
  private resyncAgain = false;
  /** Keys invalidated while a resync runs: re-read after its snapshot is applied. */
  private dirty: Set<string> | undefined;
  /**
   * What a resync that failed before applying its snapshot hands the next one, as long as
   * tracking stayed on (same epoch): the earliest snapshot start it may use, the keys invalidated
   * since it began (still collected in between) and when it began. Without it, every failed read
   * in a restart storm needed a newer snapshot build (bench/state-scale.ts, 500 sidecars x 1M
   * entries: 5 failed resyncs per sidecar, 10 builds, 266 s back in sync).
   */
  private carry: { epoch: number; since: { after: string }; dirty: Set<string>; startedAt: number } | undefined;
  /**
   * The snapshot the mirror was built from, and every key the mirror changed since: the mirror
   * equals the base except at these keys. A catch-up against a newer snapshot then reads only
   * the buckets whose digest changed, replaces their entries, and re-reads these keys, instead of
   * the whole snapshot (snapshot-chunks.ts).
   */
  private base: SnapshotBase | undefined;
  private touched = new Set<string>();
  /** Keeps the snapshot this sidecar built and published usable for later resyncs (snapshot-keeper.ts). */
  private keeper: SnapshotKeeper | undefined;
  /** Bumped whenever the base is set or dropped: a catch-up computed against an older one is void. */
  private baseGen = 0;
  private pending = new Set<string>();
  private pendingScheduled = false;
  private timers: NodeJS.Timeout[] = [];
  private persistenceRetry: NodeJS.Timeout | undefined;
  private beats = 0;
  /** The last heartbeat was answered on every connection. */
  private answering = true;
  private closed = false;
  /** Resolves the first time the mirror is in sync (start() waits for it, within a bound). */
  private firstSync!: () => void;
  private readonly firstSyncDone = new Promise<void>((resolve) => (this.firstSync = resolve));

  constructor(
    private readonly cfg: StateConfig,
    /**
     * `mirror` and `decodeSnapshot` replace the product's Mirror and page decoder: the fleet bench
     * keeps only its probe keys and skips decoding, so 500 simulated sidecars fit one machine.
     */
    private readonly deps: { logger: Logger; metrics: Metrics; mirror?: StateMirror; decodeSnapshot?: SnapshotDecoder },
  ) {
    super(deps.mirror);
    const r = cfg.redis;
    this.keys = new KeySpace(r.key_prefix);
    this.snapKeys = snapshotKeys(r.key_prefix);
    this.failClosedBoundMs = 3 * r.heartbeat_interval_ms + r.command_timeout_ms;
    this.data = createDataClient(r, 'zt-authz-data');
    this.data.on('error', (err: Error) => deps.logger.debug({ err: err.message }, 'redis data connection error'));
    this.data.on('close', () => this.markOutOfSync('data connection closed'));
    // Every (re)connect may be a Redis that restarted with another config, or a failover.
    this.data.on('ready', () => void this.checkPersistence());
    this.remediator = new RedisRemediator(
      cfg.remediation,
      this.data,
      this.keys,
      deps,
      (ip, exp) => {
        this.touch('blocked_ip', ip);
        this.mirror.setBlockedIp(ip, exp);
      },
      (ip) => this.refreshKeys([this.keys.key('blocked_ip', ip)]).catch(() => undefined),
    );
  }

  /** Writes of the shared snapshot's meta key this store heard through tracking (tests and benches). */
  get snapshotPublishesHeard(): number {
    return this.publishWaiter.heard;
  }

  /** The mirror matches Redis and every channel delivers invalidations (benchmarks wait on it). */
  get synced(): boolean {
    return this.inSync && !this.closed;
  }

  private get isCluster(): boolean {
    return this.cfg.redis.cluster !== undefined;
  }

  async start(): Promise<void> {
    const r = this.cfg.redis;
    this.deps.logger.info({ target: describeTarget(r), prefix: r.key_prefix }, 'state: connecting to Redis');
    if (this.isCluster) (this.data as Cluster).on('refresh', () => this.reconcileNodes());
    else this.addChannel('standalone');
    // Failures surface through health and the retry strategy keeps reconnecting.
    this.data.connect().catch(() => undefined);
    this.every(r.heartbeat_interval_ms, () => void this.heartbeat());
    if (r.resync_interval_s > 0) this.periodicResync(r.resync_interval_s * 1000);
    // A sidecar with Redis down still starts (not ready, lists fail closed) and catches up later.
    const bound = new Promise<void>((resolve) => {
      const t = setTimeout(resolve, r.connect_timeout_ms + 4 * r.command_timeout_ms);
      t.unref();
    });
    await Promise.race([this.firstSyncDone, bound]);
    if (!this.everSynced) this.deps.logger.warn('state: Redis not reachable yet; lists fail closed until the first sync');
  }

  health(): StateHealth {
    const now = Date.now();
    return {
      backend: 'redis',
      connected: this.connected(),
      mirrorAgeMs: Math.max(0, now - (this.everSynced ? this.lastSyncedAtMs : this.createdAtMs)),
      ready: this.everSynced,
    };
  }

  /** LRANGE with a deadline this code owns: the page must not wait on a stalled Redis. */
  recentAlerts(limit: number): Promise<readonly SecurityAlert[]> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve([]), ALERTS_READ_TIMEOUT_MS);
      this.data.lrange(this.keys.alerts, 0, limit - 1).then(
        (rows) => {
          clearTimeout(timer);
          resolve(rows.flatMap((row) => parseAlert(row)));
        },
        () => {
          clearTimeout(timer);
          resolve([]);
        },
      );
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.persistenceRetry);
    for (const t of this.timers) clearTimeout(t);
    await this.remediator.close();
    // Withdrawn before the connection goes (bounded by the command timeout), so readers build at once.
    await this.keeper?.stop('closing');
    for (const c of this.channels.values()) c.close();
    this.data.disconnect();
    this.deps.metrics.stateConnected.set(0);
  }

  protected trusted(list: ListName, nowMs: number): boolean {
    if (!this.everSynced) return false;
    const age = nowMs - this.lastSyncedAtMs;
    if (this.cfg.on_unavailable[list] === 'fail_closed') return this.inSync && age <= this.failClosedBoundMs;
    return age <= this.cfg.max_staleness_s * 1000;
  }

  recordAuthFailure(ip: string, nowMs: number): void {
    try {
      if (!this.cfg.remediation.enabled || this.closed) return;
      const key = canonicalIp(ip);
      if (key === undefined || this.mirror.isIpBlocked(key, nowMs)) return;
      this.remediator.record(key, nowMs);
    } catch (err) {
      this.deps.logger.error({ err: (err as Error).message }, 'recordAuthFailure failed');
    }
  }

  /** Sends buffered auth failures now (tests; close() does it too). */
  flushAuthFailures(): Promise<void> {
    return this.remediator.flush();
  }

  // Admin writes: Redis first (it is the source of truth), then the local mirror at once.

  async suspendUser(sub: string, ttlS: number, reason?: string): Promise<void> {
    const c = await adminSuspend(this.data, this.keys, sub, ttlS, reason);
    this.touch('suspended_user', c.id);
    this.mirror.setSuspended(c.id, Date.now() + ttlS * 1000);
  }

  async unsuspendUser(sub: string): Promise<void> {
    const c = await adminUnsuspend(this.data, this.keys, sub);
    this.touch('suspended_user', c.id);
    this.mirror.setSuspended(c.id, undefined);
  }

  async blockIp(ipOrCidr: string, ttlS: number): Promise<void> {
    const c = await adminBlock(this.data, this.keys, ipOrCidr, ttlS);
    this.touch(c.kind, c.id);
    this.applyValue(c.kind, c.id, Date.now() + ttlS * 1000);
  }

  async unblockIp(ipOrCidr: string): Promise<void> {
    const c = await adminUnblock(this.data, this.keys, ipOrCidr);
    this.touch(c.kind, c.id);
    this.applyValue(c.kind, c.id, undefined);
  }

  async setRisk(sub: string, score: number, ttlS?: number): Promise<void> {
    const c = await adminRisk(this.data, this.keys, sub, score, ttlS);
    this.touch('user_risk', c.id);
    this.mirror.setRisk(c.id, { score, expiresAtMs: ttlS === undefined ? Infinity : Date.now() + ttlS * 1000 });
  }

  /**
   * A Redis that restarts without persistence comes back empty: every suspension and block is gone
   * until rewritten. Read at every connect; warn and show it in zt_authz_state_redis_persistence.
   */
  private async checkPersistence(): Promise<void> {
    let mode: PersistenceMode;
    try {
      mode = await dataPersistence(this.data, this.isCluster, mayConfigGet(this.cfg.redis.url));
    } catch {
      // A timeout says nothing about persistence: ask again shortly (a lost connection asks on 'ready').
      if (!this.closed && this.data.status === 'ready' && this.persistenceRetry === undefined) {
        this.persistenceRetry = setTimeout(() => {
          this.persistenceRetry = undefined;
          void this.checkPersistence();
        }, this.cfg.redis.heartbeat_interval_ms);
        this.persistenceRetry.unref();
      }
      return;
    }
    if (this.closed) return;
    const gauge = this.deps.metrics.stateRedisPersistence;
    for (const m of PERSISTENCE_MODES) gauge.set({ mode: m }, m === mode ? 1 : 0);
    if (mode === 'aof') return;
    const why =
      mode === 'none'
        ? 'Redis has neither AOF nor RDB persistence: after a Redis restart every suspension and IP block is lost'
        : mode === 'rdb'
          ? 'Redis persists by RDB snapshots only: a Redis restart loses the suspensions and blocks written since the last snapshot'
          : 'AOF is off and whether RDB snapshots are on could not be read (INFO refused, or an ACL user without CONFIG GET)';
    this.deps.logger.warn({ redis_persistence: mode }, `state: ${why}; enable appendonly yes`);
  }

  // --- keeping the mirror in sync ---

  /** Jittered (±20 %), so a fleet started together does not resync together. */
  private periodicResync(ms: number): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      void this.resync();
      this.periodicResync(ms);
    }, ms * (0.8 + 0.4 * Math.random()));
    t.unref();
    this.timers.push(t);
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t);
  }

  private connected(): boolean {
    if (!this.answering || this.data.status !== 'ready' || this.channels.size === 0) return false;
    for (const c of this.channels.values()) if (!c.isHealthy()) return false;
    return true;
  }

  private addChannel(name: string, node?: NodeAddress): void {
    const r = this.cfg.redis;
    // A single Redis: tracking is switched on for the data connection itself (2 connections, not 3).
    const shared = !this.isCluster;
    const channel = new TrackingChannel(
      name,
      createNodeClient(r, 'zt-authz-invalidations', node),
      shared ? (this.data as Redis) : createNodeClient(r, 'zt-authz-tracking', node),
      // A single Redis shares its snapshot: hearing its publish replaces polling for it.
      shared ? [...this.keys.trackedPrefixes(), this.snapKeys.meta] : this.keys.trackedPrefixes(),
      {
        onInvalidate: (keys) => this.onInvalidate(keys),
        onHealth: (healthy) => {
          // A resync begun before tracking was back may have missed writes: it must not claim sync.
          if (healthy) {
            this.epoch++;
            void this.resync();
          }
          else this.markOutOfSync(`invalidation channel ${name} down`);
        },
      },
      this.deps.logger,
      shared,
    );
    this.channels.set(name, channel);
  }

  /** One tracking channel per cluster master; masters come and go with failovers and resharding. */
  private reconcileNodes(): void {
    if (!this.isCluster || this.closed) return;
    const masters = (this.data as Cluster).nodes('master');
    if (masters.length === 0) return;
    const wanted = new Map<string, NodeAddress>();
    for (const m of masters) {
      const { host, port } = m.options;
      if (host !== undefined && port !== undefined) wanted.set(`${host}:${port}`, { host, port });
    }
    for (const [name, c] of this.channels) {
      if (!wanted.has(name)) {
        c.close();
        this.channels.delete(name);
      }
    }
    let added = false;
    for (const [name, node] of wanted) {
      if (this.channels.has(name)) continue;
      this.addChannel(name, node);
      added = true;
    }
    if (added) this.markOutOfSync('cluster topology changed');
  }

  private markOutOfSync(why: string): void {
    this.epoch++;
    if (!this.inSync || this.closed) return;
    this.inSync = false;
    this.deps.metrics.stateEvents.inc({ event: 'desync' });
    this.deps.logger.warn({ why }, 'state mirror out of sync with Redis');
    this.updateGauges();
  }

  private async heartbeat(): Promise<void> {
    if (this.closed) return;
    if (this.isCluster) this.reconcileNodes();
    // Every beat pings the subscribers; the data connection and the tracking state are verified
    // every VERIFY_EVERY beats, and on every beat while out of sync (see TrackingChannel.heartbeat).
    const verify = !this.inSync || ++this.beats % VERIFY_EVERY === 0;
    const beats = await Promise.all([
      ...(this.isCluster && verify ? [this.data.ping().then(() => true, () => false)] : []),
      ...[...this.channels.values()].map((c) => c.heartbeat(verify)),
    ]);
    if (this.closed) return;
    const ok = this.channels.size > 0 && beats.every(Boolean);
    // A failed beat on open connections is not a desync (see TrackingChannel.heartbeat): the
    // mirror just stops being vouched for, so fail_closed lists lapse after failClosedBoundMs.
    this.answering = ok;
    if (!ok) return this.updateGauges();
    if (this.inSync) this.lastSyncedAtMs = Date.now();
    // One already running (perhaps waiting for a shared snapshot) is not queued again.
    else if (this.resyncing === undefined) void this.resync();
    this.updateGauges();
  }

  private updateGauges(): void {
    const m = this.deps.metrics;
    m.stateConnected.set(this.connected() ? 1 : 0);
    m.stateMirrorAge.set(this.health().mirrorAgeMs / 1000);
  }

  private onInvalidate(keys: string[] | null): void {
    if (this.closed) return;
    this.deps.metrics.stateEvents.inc({ event: 'invalidation' });
    if (keys === null) {
      // After a FLUSH only a snapshot begun later is right: nothing carried over, and out of sync
      // (so heartbeats retry until a resync succeeds) rather than keep the flushed entries.
      this.carry = undefined;
      this.dropBase();
      this.markOutOfSync('FLUSH on Redis');
      this.epoch++;
      void this.resync();
      return;
    }
    let listed = 0;
    for (const k of keys) {
      if (k === this.snapKeys.meta) {
        this.publishWaiter.published();
        continue;
      }
      this.pending.add(k);
      this.dirty?.add(k);
      this.keeper?.record(k);
      listed++;
    }
    if (listed === 0 || this.pendingScheduled) return;
    this.pendingScheduled = true;
    setTimeout(() => {
      this.pendingScheduled = false;
      const batch = [...this.pending];
      this.pending.clear();
      this.refreshKeys(batch).catch((err: unknown) => {
        this.deps.logger.warn({ err: (err as Error).message }, 'state: re-reading invalidated keys failed');
        this.markOutOfSync('invalidated keys could not be read');
      });
    }, COALESCE_MS).unref();
  }

  /** Full resync; at most one runs at a time, a request during one queues another. */
  resync(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.resyncing !== undefined) {
      this.resyncAgain = true;
      return this.resyncing;
    }
    this.resyncing = this.doResync().finally(() => {
      this.resyncing = undefined;
      if (this.resyncAgain && !this.closed) {
        this.resyncAgain = false;
        void this.resync();
      }
    });
    return this.resyncing;
  }

  private async doResync(): Promise<void> {
    const epoch = this.epoch;
    // A carry is only for retrying a recent failure: not one kept for long, nor one whose key set
    // (names an attacker can choose, through auto-remediation) has grown large.
    const c = this.carry;
    if (c !== undefined && (c.epoch !== epoch || Date.now() - c.startedAt > CARRY_MAX_AGE_MS || c.dirty.size > CARRY_MAX_KEYS)) this.carry = undefined;
    if (this.carry === undefined) this.carry = { epoch, since: { after: '' }, dirty: new Set<string>(), startedAt: Date.now() };
    const carry = this.carry;
    const { dirty, startedAt } = carry;
    this.dirty = dirty;
    let loadedSnapshot = false;
    let replaced = false;
    /** Keys the mirror may hold wrong until re-read; set once the new base stands. */
    let unconfirmed: Set<string> | undefined;
    try {
      const channels = [...this.channels.values()];
      if (channels.length === 0) throw new Error('no Redis node known yet');
      // A read begun before tracking is on could miss writes made meanwhile; the channel's
      // onHealth(true) starts the resync once it is.
      if (!channels.every((c) => c.isHealthy())) throw new Error('tracking not on yet');
      // A disruption meanwhile does not abandon the read (it is still a full one, enough to be
      // ready); it only keeps this resync from claiming sync, and the next one follows.
      const alive = () => !this.closed;
      const baseGen = this.baseGen;
      const loaded: LoadedSnapshot[] = this.isCluster
        ? await Promise.all(channels.map((c) => scanNode(c.tracker, this.keys.prefix, alive)))
        : [await freshSnapshot(this.data as Redis, this.keys.prefix, this.snapKeys, alive, this.publishWaiter, this.leaseId, carry.since, this.base, true)];
      // A FLUSH or the touched cap dropped the base while the read waited: the changed buckets
      // were found against a base whose touched keys are gone, so they cannot be re-read. Fail
      // before applying anything; the next attempt, with no base, reads everything.
      if (loaded[0]?.removed !== undefined && this.baseGen !== baseGen) throw new Error('snapshot base dropped during the read');
      const decode = this.deps.decodeSnapshot ?? decodeInto;
      // A snapshot that fails to decode (or anything after this) must not be retried as is: the
      // next attempt waits for a newer one.
      loadedSnapshot = true;
      const only = loaded.length === 1 ? loaded[0] : undefined;
      // Built here, with tracking on throughout: keep it usable for the resyncs that follow.
      if (only?.published !== undefined && epoch === this.epoch) this.keep(only.published, dirty);
      // A snapshot begun before this resync: the keys written since it began are re-read, and
      // the mirror differs from the new base there (they join `touched` below).
      for (const k of only?.logKeys ?? []) dirty.add(k);
      const reread = new Set(dirty);
      if (only?.removed !== undefined) {
        // The base's entries that differ in the changed buckets out, the new ones in, in one
        // synchronous step (no request sees a bucket half replaced); then every key changed since
        // the base is re-read, since only those can differ from it. Decoded in full before any is
        // applied: a decode that threw halfway through the removals would leave entries missing.
        const changes: (() => void)[] = [];
        decode(only.removed, only.offsetMs, deferred(removingFrom(this.mirror), changes));
        decode(only.pages, only.offsetMs, deferred(writingTo(this.mirror), changes));
        replaced = true;
        for (const change of changes) change();
        for (const k of this.touched) reread.add(k);
      } else {
        // Decoded straight into the new lists: no second copy of a million entries on the way.
        const builder = this.mirror.builder();
        for (const l of loaded) decode(l.pages, l.offsetMs, builder);
        this.mirror.replace(builder);
      }
      if (only?.buildReason !== undefined) this.deps.metrics.stateSnapshotBuilds.inc({ reason: only.buildReason });
      this.lastSnapshotSource = only?.source ?? loaded[0]?.source;
      this.lastSnapshotBytes = loaded.reduce((n, l) => n + (l.bytesRead ?? 0), 0);
      this.lastLogKeys = only?.logKeys?.length;
      // The mirror now differs from the new base only at keys invalidated since this resync began
      // (the re-read below gives the others the value the base has, or they are invalidated too).
      this.base = only?.base;
      this.baseGen++;
      this.touched = new Set(dirty);
      if (this.touched.size > TOUCHED_MAX_KEYS) this.dropBase();
      replaced = true;
      unconfirmed = reread;
      // From here a failure must start over: a later attempt could apply the same snapshot again,
      // and keys invalidated after this point are no longer collected.
      if (this.carry === carry) this.carry = undefined;
      this.dirty = undefined;
      if (reread.size > 0) await this.refreshKeys([...reread], false);
      this.mirror.sweep(Date.now());
      this.everSynced = true;
      if (epoch === this.epoch && channels.every((c) => c.isHealthy()) && this.channels.size === channels.length) {
        this.lastSyncedAtMs = Math.max(this.lastSyncedAtMs, startedAt);
        if (!this.inSync) this.deps.logger.info({ counts: this.mirror.counts() }, 'state mirror in sync with Redis');
        this.inSync = true;
        this.firstSync();
      }
      this.deps.metrics.stateEvents.inc({ event: 'resync' });
    } catch (err) {
      this.deps.metrics.stateEvents.inc({ event: 'error' });
      this.deps.logger.debug({ err: (err as Error).message }, 'state resync failed');
      if (loadedSnapshot && this.carry === carry) this.carry = undefined;
      // The mirror now holds the snapshot without the keys changed meanwhile: not in sync. It
      // still equals its new base except at the keys not re-read, so those join the touched ones
      // and the next resync catches up by changed buckets again (reading all of a million
      // entries after every failed re-read made a restart storm's stragglers slower still).
      if (replaced) {
        if (unconfirmed === undefined) this.dropBase();
        else for (const k of unconfirmed) this.touchKey(k);
        this.markOutOfSync('re-reading the keys changed during a resync failed');
      }
    } finally {
      // A failure before the snapshot was applied, with tracking still on, keeps collecting for the
      // next attempt, which the heartbeat starts within a beat while out of sync. In sync (a
      // periodic resync failed) no attempt follows soon: collect nothing meanwhile.
      const carried = this.carry === carry && carry.epoch === this.epoch && !this.inSync;
      if (!carried && this.carry === carry) this.carry = undefined;
      if (this.dirty === dirty && !carried) this.dirty = undefined;
      this.updateGauges();
    }
  }

  /** `touch`: false only for a resync's re-read, which makes the mirror match its new base. */
  private async refreshKeys(keys: string[], touch = true): Promise<void> {
    for (let at = 0; at < keys.length; at += READ_CHUNK) {
      const chunk = keys.slice(at, at + READ_CHUNK);
      const values = await this.readWithRetry(chunk);
      chunk.forEach((key, i) => {
        const p = this.keys.parse(key);
        if (p === undefined) return;
        if (touch) this.touchKey(key);
        this.applyValue(p.kind, p.id, values[i]);
      });
    }
  }

  private touch(kind: ListKind, id: string): void {
    this.touchKey(this.keys.key(kind, id));
  }

  /** A key an attacker can name (auto-remediation) grows this set: past the bound, read all next time. */
  private touchKey(key: string): void {
    if (this.base === undefined) return;
    this.touched.add(key);
    if (this.touched.size > TOUCHED_MAX_KEYS) this.dropBase();
  }

  private dropBase(): void {
    this.base = undefined;
    this.baseGen++;
    this.touched = new Set();
  }

  private keep(snapshot: string, since: Set<string>): void {
    void this.keeper?.stop('newer_build');
    const epoch = this.epoch;
    const channel = this.channels.get('standalone');
    if (channel === undefined) return;
    this.keeper = new SnapshotKeeper(snapshot, since, {
      conn: this.data as Redis,
      keys: this.snapKeys,
      barrier: () => channel.barrier(),
      intact: () => !this.closed && this.epoch === epoch && channel.isHealthy(),
      onStop: (why) => {
        this.deps.metrics.stateKeeperStops.inc({ reason: why });
        this.deps.logger.debug({ why }, 'state: snapshot keeper stopped');
      },
    });
  }

  /** Keys logged by the snapshot keeper this sidecar runs, if any (benches and tests). */
  get keeperLogged(): number | undefined {
    return this.keeper?.active === true ? this.keeper.size : undefined;
  }

  /**
   * A read that timed out on a connection still open is sent again (the reads change nothing):
   * a busy moment is otherwise a full resync, i.e. a snapshot read, for every sidecar it hits.
   * Past the retries, or with the connection gone, the caller marks the mirror out of sync.
   */
  private async readWithRetry(keys: string[]): Promise<KeyValue[]> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.readKeys(keys);
      } catch (err) {
        if (attempt >= READ_RETRIES || this.closed || this.data.status !== 'ready' || !/timed out/i.test((err as Error).message)) throw err;
      }
    }
  }

  private applyValue(kind: ListKind, id: string, v: KeyValue): void {
    switch (kind) {
      case 'suspended_user':
        return this.mirror.setSuspended(id, v as number | undefined);
      case 'blocked_ip':
        return this.mirror.setBlockedIp(id, v as number | undefined);
      case 'blocked_cidr':
        return this.mirror.setBlockedCidr(id, v as number | undefined);
      case 'user_risk':
        return this.mirror.setRisk(id, v as RiskEntry | undefined);
    }
  }

  /**
   * Reads keys with auto-pipelining (one round trip per node); rejects if any read fails. Plain
   * commands rather than one Lua call per batch: measured on Redis 7.0 (INFO commandstats), an
   * EVALSHA that PTTLs 1 key costs 6.0 µs of command time against 0.34 µs for a PTTL, and for 100
   * keys 77 µs against 34 µs; Redis CPU for a pipelined batch of 100 is about equal (134 vs 114 µs).
   */
  private readKeys(keys: string[]): Promise<KeyValue[]> {
    return Promise.all(
      keys.map(async (key): Promise<KeyValue> => {
        const p = this.keys.parse(key);
        if (p === undefined) return undefined;
        if (p.kind !== 'user_risk') return expiresAt(await this.data.pttl(key));
        const [score, ttl] = await Promise.all([
          this.data.hget(key, 'score').catch(async (err: Error) => {
            if (replyErrorKind(err) !== 'WRONGTYPE') throw err;
            // Another tool wrote a plain string: honour it as the score. Any other type reads as
            // unreadable (the highest risk), as the snapshot script does, rather than failing the
            // batch and forcing a full resync on every write of that key.
            return this.data.get(key).catch((e: Error) => {
              if (replyErrorKind(e) === 'WRONGTYPE') return 'unreadable';
              throw e;
            });
          }),
          this.data.pttl(key),
        ]);
        const exp = expiresAt(ttl);
        return exp === undefined || score === null ? undefined : { score: parseStoredScore(score), expiresAtMs: exp };
      }),
    );
  }
}

/** PTTL -> absolute expiry, read at reply time so local expiry never precedes Redis's own. */
function expiresAt(pttl: number): number | undefined {
  if (pttl === -2) return undefined;
  return pttl === -1 ? Infinity : Date.now() + pttl;
}
