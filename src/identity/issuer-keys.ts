import type { Algorithm, IssuerConfig } from '../config/schema/identity.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { EMPTY_KEY_SET, loadJwks, retireDropped, type KeyRecord, type KeySet } from './keys.js';
import { loadKeyDocument, type KeySource } from './key-source.js';

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;

export interface IssuerKeysOptions {
  readonly issuer: string;
  readonly algorithms: readonly Algorithm[];
  readonly source: KeySource | undefined;
  readonly secret: KeyRecord | undefined;
  readonly keys: Pick<IssuerConfig['keys'], 'refresh_interval_s' | 'fetch_timeout_ms' | 'unknown_kid_cooldown_s'>;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/**
 * One issuer's verification keys: initial load, background refresh, retry with backoff while it
 * has none, and rate-limited refetch on an unknown kid. Every fetch goes through `refresh()`, which
 * shares one in-flight load, so concurrent callers never multiply requests.
 */
export class IssuerKeys {
  readonly issuer: string;
  readonly secret: KeyRecord | undefined;
  /** Replaced wholesale on each successful load; readers never see a half-built set. */
  set: KeySet = EMPTY_KEY_SET;
  private loaded: boolean;
  private inflight: Promise<void> | undefined;
  private lastOnDemandMs = Number.NEGATIVE_INFINITY;
  private retryMs = FIRST_RETRY_MS;
  private timer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  private readonly discoveryCache: { jwksUri?: string | undefined } = {};

  constructor(private readonly opts: IssuerKeysOptions) {
    this.issuer = opts.issuer;
    this.secret = opts.secret;
    this.loaded = opts.source === undefined;
    if (opts.source?.kind === 'static') {
      this.apply(opts.source.jwks);
      this.loaded = true;
    }
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

  async start(): Promise<void> {
    if (!this.refetchable) return;
    await this.refresh('start');
  }

  /**
   * Called on a kid the current set lacks. Returns the load to wait for, or undefined when a
   * fetch would exceed the cooldown (a flood of random kids costs at most one fetch per cooldown).
   */
  refetchForUnknownKid(): Promise<void> | undefined {
    if (this.inflight) return this.inflight;
    if (!this.refetchable) return undefined;
    const now = performance.now();
    if (now - this.lastOnDemandMs < this.opts.keys.unknown_kid_cooldown_s * 1000) return undefined;
    this.lastOnDemandMs = now;
    return this.refresh('unknown_kid');
  }

  refresh(trigger: string): Promise<void> {
    this.inflight ??= this.load(trigger).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.abort.abort();
  }

  private async load(trigger: string): Promise<void> {
    const { issuer, logger, metrics, keys } = this.opts;
    try {
      const doc = await loadKeyDocument(this.opts.source!, { timeoutMs: keys.fetch_timeout_ms, closed: this.abort.signal }, this.discoveryCache);
      if (this.abort.signal.aborted) return;
      this.apply(doc);
      metrics.jwksRefreshes.inc({ issuer, outcome: 'ok' });
      this.loaded = true;
      this.retryMs = FIRST_RETRY_MS;
      this.schedule(keys.refresh_interval_s * 1000);
    } catch (err) {
      if (this.abort.signal.aborted) return;
      metrics.jwksRefreshes.inc({ issuer, outcome: 'error' });
      const message = (err as Error).message;
      if (this.loaded) {
        logger.warn({ issuer, trigger, err: message }, 'JWKS refresh failed; serving the last good keys');
      } else {
        logger.error({ issuer, trigger, err: message, retryInMs: this.retryMs }, 'JWKS load failed; tokens of this issuer are denied until it succeeds');
      }
      const interval = keys.refresh_interval_s * 1000;
      this.schedule(interval > 0 ? Math.min(this.retryMs, interval) : this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    }
  }

  /** Throws when the document yields no usable key; the previous set then stays in force. */
  private apply(doc: unknown): void {
    const { issuer, logger, metrics, algorithms } = this.opts;
    const { set, rejected } = loadJwks(doc, algorithms, this.set);
    for (const why of rejected) logger.warn({ issuer, why }, 'JWKS key rejected');
    if (set.size === 0) throw new Error(`JWKS has no usable key (${rejected.length} rejected)`);
    const previous = this.set;
    this.set = set;
    const dropped = retireDropped(previous, set);
    if (dropped > 0) logger.info({ issuer, dropped }, 'keys left the JWKS; tokens they verified are no longer served from cache');
    metrics.jwksKeys.set({ issuer }, set.size);
  }

  private schedule(ms: number): void {
    if (this.abort.signal.aborted || ms <= 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.refresh('timer');
    }, ms);
    this.timer.unref();
  }
}
