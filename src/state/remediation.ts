import { randomUUID } from 'node:crypto';
import type { StateConfig } from '../config/schema/state.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { KeySpace } from './keys.js';
import type { DataClient } from './redis-conn.js';

export interface SecurityAlert {
  readonly type: string;
  readonly [field: string]: unknown;
}

export function autoBlockAlert(ip: string, failures: number, windowS: number, atMs: number): SecurityAlert {
  return { type: 'auto_block', ip, failures, window_s: windowS, at: new Date(atMs).toISOString(), source: 'zt-authz' };
}

const ALERTS_KEEP = 1000;
const ALERTS_TTL_S = 86_400;
const FLUSH_MS = 100;
/** Bounds the buffer between flushes, and what survives a Redis outage. */
const MAX_BUFFERED_IPS = 10_000;

/** LPUSH + LTRIM + EXPIRE, as the guides' monitor does. */
export async function pushAlert(data: DataClient, keys: KeySpace, alert: SecurityAlert): Promise<void> {
  const key = keys.alerts;
  await Promise.all([
    data.lpush(key, JSON.stringify(alert)),
    data.ltrim(key, 0, ALERTS_KEEP - 1),
    data.expire(key, ALERTS_TTL_S),
  ]);
}

/**
 * Counts failed authentications per IP in Redis so every sidecar contributes to one sliding
 * window (a sorted set of failure times). The hot path only bumps an in-memory counter; a timer
 * flushes the counters in one auto-pipelined batch, so Redis latency never reaches a Check call.
 */
export class RedisRemediator {
  private buffer = new Map<string, { count: number; lastMs: number }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private seq = 0;
  private closed = false;
  private readonly instance = randomUUID().slice(0, 8);

  constructor(
    private readonly cfg: StateConfig['remediation'],
    private readonly data: DataClient,
    private readonly keys: KeySpace,
    private readonly deps: { logger: Logger; metrics: Metrics },
    /** Called once Redis holds the block, so this sidecar enforces it without waiting for the invalidation. */
    private readonly onBlocked: (ip: string, expiresAtMs: number) => void,
    /** Called when the IP was already blocked by someone else: re-read its TTL. */
    private readonly onAlreadyBlocked: (ip: string) => void,
  ) {}

  record(ip: string, nowMs: number): void {
    const b = this.buffer.get(ip);
    if (b !== undefined) {
      b.count++;
      b.lastMs = nowMs;
    } else if (this.buffer.size < MAX_BUFFERED_IPS) {
      this.buffer.set(ip, { count: 1, lastMs: nowMs });
    } else {
      this.deps.metrics.stateEvents.inc({ event: 'remediation_dropped' });
      return;
    }
    if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Sends buffered counts; resolves when done (tests and close() await it). Never rejects. */
  flush(): Promise<void> {
    if (this.flushing !== undefined) return this.flushing.then(() => this.flush());
    if (this.buffer.size === 0) return Promise.resolve();
    const batch = this.buffer;
    this.buffer = new Map();
    this.flushing = Promise.all([...batch].map(([ip, b]) => this.flushIp(ip, b))).then(
      () => undefined,
      () => undefined,
    ).finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async flushIp(ip: string, b: { count: number; lastMs: number }): Promise<void> {
    const key = this.keys.authFailures(ip);
    const windowMs = this.cfg.window_s * 1000;
    // More members than the threshold add nothing but memory.
    const n = Math.min(b.count, this.cfg.threshold);
    const zaddArgs: (string | number)[] = [];
    for (let i = 0; i < n; i++) zaddArgs.push(b.lastMs, `${b.lastMs}:${this.instance}:${this.seq++}`);
    try {
      const [, , failures] = await Promise.all([
        this.data.zadd(key, ...zaddArgs),
        this.data.zremrangebyscore(key, '-inf', b.lastMs - windowMs),
        this.data.zcard(key),
        this.data.pexpire(key, windowMs),
      ]);
      if (failures < this.cfg.threshold) return;
      await this.block(ip, failures, b.lastMs);
    } catch (err) {
      this.deps.metrics.stateEvents.inc({ event: 'error' });
      this.deps.logger.warn({ err: (err as Error).message }, 'auth-failure counting failed; will retry');
      this.requeue(ip, b);
    }
  }

  private async block(ip: string, failures: number, atMs: number): Promise<void> {
    const ttl = this.cfg.block_ttl_s;
    // NX: never shorten a longer block an operator set, and let only one sidecar raise the alert.
    const set = await this.data.set(this.keys.key('blocked_ip', ip), 'true', 'EX', ttl, 'NX');
    await this.data.del(this.keys.authFailures(ip));
    if (set !== 'OK') {
      this.onAlreadyBlocked(ip);
      return;
    }
    this.onBlocked(ip, Date.now() + ttl * 1000);
    const alert = autoBlockAlert(ip, failures, this.cfg.window_s, atMs);
    this.deps.metrics.stateEvents.inc({ event: 'remediation_block' });
    this.deps.logger.warn({ alert }, 'auto-remediation: IP blocked after repeated authentication failures');
    await pushAlert(this.data, this.keys, alert);
  }

  private requeue(ip: string, b: { count: number; lastMs: number }): void {
    if (this.closed) return;
    const cur = this.buffer.get(ip);
    if (cur !== undefined) cur.count += b.count;
    else if (this.buffer.size < MAX_BUFFERED_IPS) this.buffer.set(ip, { ...b });
    else return;
    if (this.timer === undefined) {
      // Back off while Redis is unreachable rather than retrying every 100 ms.
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, 1000);
      this.timer.unref();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
