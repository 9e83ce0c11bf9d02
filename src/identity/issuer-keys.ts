import type { Algorithm, IssuerConfig } from '../config/schema/identity.js';
import type { Logger } from '../observability/logger.js';
import type { JwksStatusSource, Metrics } from '../observability/metrics.js';
import { EMPTY_KEY_SET, loadJwks, retireAll, retireDropped, type KeyRecord, type KeySet } from './keys.js';
import { loadKeyDocument, type KeySource } from './key-source.js';

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;
/** Beyond the sum of its fetch deadlines, before a load is settled as failed whatever it is doing. */
const LOAD_GRACE_MS = 250;

export interface IssuerKeysOptions {
  readonly issuer: string;
  readonly algorithms: readonly Algorithm[];
  readonly source: KeySource | undefined;
  readonly secret: KeyRecord | undefined;
  readonly keys: Pick<IssuerConfig['keys'], 'refresh_interval_s' | 'fetch_timeout_ms' | 'unknown_kid_cooldown_s' | 'max_stale_s'>;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/** What /readyz and the metrics show of one issuer's key set. */
const MAX_LISTED_KIDS = 20;

export interface IssuerKeyStatus {
  /** Seconds since the set in force was fetched; null before the first success (or for static keys). */
  readonly age_s: number | null;
  readonly keys: number;
  /** Key ids of the set in force (public, as the JWKS publishes them), at most MAX_LISTED_KIDS. */
  readonly kids: readonly string[];
  readonly last_refresh: 'ok' | 'error' | 'none';
  readonly last_refresh_at: string | null;
  readonly last_error?: string;
  /** The set is older than max_stale_s: its tokens are denied dependency_unavailable. */
  readonly expired: boolean;
  readonly max_stale_s: number;
}

interface InFlight {
  readonly promise: Promise<void>;
  readonly startedMs: number;
  readonly generation: number;
}

/**
 * One issuer's verification keys: initial load, background refresh, retry with backoff while it
 * fails, and rate-limited refetch on an unknown kid. Every fetch goes through `refresh()`, which
 * shares one in-flight load, so concurrent callers never multiply requests.
 *
 * No load can block the next one: each is settled by a timer held here at its deadline (the sum of
 * its fetch deadlines plus a grace), whatever the network or the runtime does, and an in-flight load
 * found older than that is abandoned (its late result is ignored).
 */
export class IssuerKeys implements JwksStatusSource {
  readonly issuer: string;
  readonly secret: KeyRecord | undefined;
  /** Replaced wholesale on each successful load; readers never see a half-built set. */
  set: KeySet = EMPTY_KEY_SET;
  /** A set was loaded (and has not expired past max_stale_s). */
  private loaded: boolean;
  private expired = false;
  private inflight: InFlight | undefined;
  private generation = 0;
  private lastOnDemandMs = Number.NEGATIVE_INFINITY;
  /** Start of the last fetch of any trigger; while failing, the next starts a cooldown later at the earliest. */
  private lastAttemptMs = Number.NEGATIVE_INFINITY;
  private lastOkMs: number | undefined;
  private lastOkWallMs: number | undefined;
  private lastOutcome: 'ok' | 'error' | 'none' = 'none';
  private lastError: string | undefined;
  private retryMs = FIRST_RETRY_MS;
  private timer: NodeJS.Timeout | undefined;
  private staleTimer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  private readonly discoveryCache: { jwksUri?: string | undefined } = {};
  private readonly cooldownMs: number;
  private readonly maxStaleMs: number;

  constructor(private readonly opts: IssuerKeysOptions) {
    this.issuer = opts.issuer;
    this.secret = opts.secret;
    this.cooldownMs = opts.keys.unknown_kid_cooldown_s * 1000;
    this.maxStaleMs = this.refetchable ? opts.keys.max_stale_s * 1000 : 0;
    this.loaded = opts.source === undefined;
    if (opts.source?.kind === 'static') {
      this.apply(opts.source.jwks, this.generation);
      this.loaded = true;
    }
    if (this.refetchable) opts.metrics.jwksStatusSources.add(this);
  }

  /** True when tokens of this issuer can be verified (it has keys, or needs none beyond its secret). */
  ready(): boolean {
    return this.loaded;
  }

  /** Whether an unknown kid could ever be resolved by fetching again. */
  get refetchable(): boolean {
    const kind = this.opts.source?.kind;
    return kind !== undefined && kind !== 'static';
  }

  /**
   * Called on the cold path (a token not in the cache): expires the set when its timer was late.
   * Returns why the set cannot be used, or undefined when it can.
   */
  unusableReason(): string | undefined {
    if (this.maxStaleMs > 0 && this.loaded && this.lastOkMs !== undefined && performance.now() - this.lastOkMs > this.maxStaleMs) this.expire();
    if (this.loaded) return undefined;
    if (this.expired) {
      return `key set expired: last refreshed ${this.lastOkWallMs === undefined ? 'never' : new Date(this.lastOkWallMs).toISOString()}, older than max_stale_s ${this.maxStaleMs / 1000}`;
    }
    return 'no usable keys loaded for the issuer';
  }

  async start(): Promise<void> {
    if (!this.refetchable) return;
    await this.refresh('start');
  }

  /**
   * Called on a kid the current set lacks. Returns the load to wait for, or undefined when a
   * fetch would exceed the cooldown (a flood of random kids costs at most one fetch per cooldown,
   * and while the endpoint fails, no fetch of any trigger starts within a cooldown of the last).
   */
  refetchForUnknownKid(): Promise<void> | undefined {
    const live = this.liveInflight();
    if (live) return live.promise;
    if (!this.refetchable) return undefined;
    const now = performance.now();
    const since = this.lastOutcome === 'error' ? Math.max(this.lastOnDemandMs, this.lastAttemptMs) : this.lastOnDemandMs;
    if (now - since < this.cooldownMs) return undefined;
    this.lastOnDemandMs = now;
    return this.refresh('unknown_kid');
  }

  refresh(trigger: string): Promise<void> {
    const live = this.liveInflight();
    if (live) return live.promise;
    const generation = ++this.generation;
    const startedMs = performance.now();
    this.lastAttemptMs = startedMs;
    const promise = this.load(trigger, generation).finally(() => {
      if (this.inflight?.generation === generation) this.inflight = undefined;
    });
    this.inflight = { promise, startedMs, generation };
    return promise;
  }

  status(): IssuerKeyStatus {
    const s: IssuerKeyStatus = {
      age_s: this.lastOkMs === undefined ? null : Math.round((performance.now() - this.lastOkMs) / 100) / 10,
      keys: this.set.size,
      kids: [...this.set.byKid.keys()].slice(0, MAX_LISTED_KIDS),
      last_refresh: this.lastOutcome,
      last_refresh_at: this.lastOkWallMs === undefined ? null : new Date(this.lastOkWallMs).toISOString(),
      expired: this.expired,
      max_stale_s: this.maxStaleMs / 1000,
    };
    return this.lastError === undefined ? s : { ...s, last_error: this.lastError };
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.staleTimer) clearTimeout(this.staleTimer);
    this.timer = this.staleTimer = undefined;
    this.abort.abort();
    this.opts.metrics.jwksStatusSources.delete(this);
  }

  /** The in-flight load, unless it outlived its deadline (then it is abandoned: the watchdog). */
  private liveInflight(): InFlight | undefined {
    const f = this.inflight;
    if (f === undefined) return undefined;
    if (performance.now() - f.startedMs <= this.loadDeadlineMs() + LOAD_GRACE_MS) return f;
    this.opts.logger.warn({ issuer: this.issuer }, 'JWKS load outlived its deadline; abandoned, a new one starts');
    this.inflight = undefined;
    return undefined;
  }

  private loadDeadlineMs(): number {
    const fetches = this.opts.source?.kind === 'discovery' && this.discoveryCache.jwksUri === undefined ? 2 : 1;
    return fetches * this.opts.keys.fetch_timeout_ms + LOAD_GRACE_MS;
  }

  private async load(trigger: string, generation: number): Promise<void> {
    const { issuer, logger, metrics, keys } = this.opts;
    // If the load itself never settles, this fallback retry still comes; a settled load replaces it.
    this.schedule(this.loadDeadlineMs() + LOAD_GRACE_MS + this.failureDelayMs());
    try {
      const doc = await withDeadline(
        loadKeyDocument(this.opts.source!, { timeoutMs: keys.fetch_timeout_ms, closed: this.abort.signal }, this.discoveryCache),
        this.loadDeadlineMs(),
        `JWKS load did not settle within ${this.loadDeadlineMs()} ms`,
      );
      if (this.abort.signal.aborted || generation !== this.generation) return;
      this.apply(doc, generation);
      metrics.jwksRefreshes.inc({ issuer, outcome: 'ok' });
      this.loaded = true;
      this.expired = false;
      this.lastOutcome = 'ok';
      this.lastError = undefined;
      this.lastOkMs = performance.now();
      this.lastOkWallMs = Date.now();
      this.armStaleTimer();
      this.retryMs = FIRST_RETRY_MS;
      this.schedule(keys.refresh_interval_s * 1000);
    } catch (err) {
      if (this.abort.signal.aborted || generation !== this.generation) return;
      metrics.jwksRefreshes.inc({ issuer, outcome: 'error' });
      const message = (err as Error).message;
      this.lastOutcome = 'error';
      this.lastError = message;
      const delay = this.failureDelayMs();
      if (this.loaded) {
        logger.warn({ issuer, trigger, err: message, retryInMs: delay }, 'JWKS refresh failed; serving the last good keys');
      } else {
        logger.error({ issuer, trigger, err: message, retryInMs: delay }, 'JWKS load failed; tokens of this issuer are denied until it succeeds');
      }
      this.schedule(delay);
      this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    }
  }

  /**
   * Backoff after a failure, within the refresh interval. While a set serves, retries also keep
   * to the unknown-kid cooldown: the endpoint is failing, and the operator's cooldown is the rate
   * it may be asked at. Without any set, retries stay fast (every token of the issuer is denied).
   */
  private failureDelayMs(): number {
    const interval = this.opts.keys.refresh_interval_s * 1000;
    const backoff = interval > 0 ? Math.min(this.retryMs, interval) : this.retryMs;
    return this.loaded ? Math.max(backoff, this.cooldownMs) : backoff;
  }

  /** Throws when the document yields no usable key; the previous set then stays in force. */
  private apply(doc: unknown, generation: number): void {
    const { issuer, logger, metrics, algorithms } = this.opts;
    const { set, rejected } = loadJwks(doc, algorithms, this.set);
    for (const why of rejected) logger.warn({ issuer, why }, 'JWKS key rejected');
    if (set.size === 0) throw new Error(`JWKS has no usable key (${rejected.length} rejected)`);
    if (generation !== this.generation) return;
    const previous = this.set;
    this.set = set;
    const dropped = retireDropped(previous, set);
    if (dropped > 0) logger.info({ issuer, dropped }, 'keys left the JWKS; tokens they verified are no longer served from cache');
    metrics.jwksKeys.set({ issuer }, set.size);
  }

  private armStaleTimer(): void {
    if (this.staleTimer) clearTimeout(this.staleTimer);
    this.staleTimer = undefined;
    if (this.maxStaleMs <= 0 || this.abort.signal.aborted) return;
    this.staleTimer = setTimeout(() => {
      this.staleTimer = undefined;
      this.expire();
    }, this.maxStaleMs);
    this.staleTimer.unref();
  }

  /** Past max_stale_s: the set stops verifying, and cached tokens it verified stop being served. */
  private expire(): void {
    if (!this.loaded || this.expired) return;
    this.loaded = false;
    this.expired = true;
    retireAll(this.set);
    this.set = EMPTY_KEY_SET;
    this.opts.metrics.jwksKeys.set({ issuer: this.issuer }, 0);
    this.opts.logger.error(
      { issuer: this.issuer, lastRefreshAt: this.lastOkWallMs === undefined ? null : new Date(this.lastOkWallMs).toISOString(), maxStaleS: this.maxStaleMs / 1000, err: this.lastError },
      'JWKS key set older than max_stale_s; tokens of this issuer are denied until a refresh succeeds',
    );
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.abort.signal.aborted || ms <= 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.refresh('timer');
    }, ms);
    this.timer.unref();
  }
}

/** Settles with `p`, or rejects at `ms` from a timer held here, whichever comes first. */
function withDeadline<T>(p: Promise<T>, ms: number, why: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(why)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
