import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { StateConfig } from '../config/schema/state.js';
import type { StateHealth, StateStore } from './types.js';
import { canonicalIp } from '../ip.js';
import { parseBlockTarget, validateScore, validateTtl, validateUser } from './keys.js';
import { MirroredStateView } from './view.js';
import { autoBlockAlert, type SecurityAlert } from './remediation.js';

/** Bounds the memory an IP-spraying attacker can make the failure windows use. */
const MAX_TRACKED_IPS = 100_000;
const MAX_ALERTS = 1000;
const SWEEP_MS = 30_000;

/** The embedded default: the same lists, TTLs, CIDRs and remediation, held in process memory only. */
export class MemoryStateStore extends MirroredStateView implements StateStore {
  private readonly failures = new Map<string, number[]>();
  /** Newest first, like LPUSH security_alerts. */
  readonly alerts: SecurityAlert[] = [];
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cfg: StateConfig,
    private readonly deps: { logger: Logger; metrics: Metrics },
  ) {
    super();
  }

  protected trusted(): boolean {
    return true;
  }

  async start(): Promise<void> {
    this.deps.metrics.stateConnected.set(1);
    this.deps.metrics.stateMirrorAge.set(0);
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), SWEEP_MS);
    this.sweepTimer.unref();
  }

  recentAlerts(limit: number): Promise<readonly SecurityAlert[]> {
    return Promise.resolve(this.alerts.slice(0, limit));
  }

  health(): StateHealth {
    return { backend: 'memory', connected: true, mirrorAgeMs: 0, ready: true };
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
  }

  async suspendUser(sub: string, ttlS: number): Promise<void> {
    this.mirror.setSuspended(validateUser(sub), Date.now() + validateTtl(ttlS) * 1000);
  }

  async unsuspendUser(sub: string): Promise<void> {
    this.mirror.setSuspended(validateUser(sub), undefined);
  }

  async blockIp(ipOrCidr: string, ttlS: number): Promise<void> {
    const t = parseBlockTarget(ipOrCidr);
    const exp = Date.now() + validateTtl(ttlS) * 1000;
    if (t.kind === 'blocked_ip') this.mirror.setBlockedIp(t.id, exp);
    else this.mirror.setBlockedCidr(t.id, exp);
  }

  async unblockIp(ipOrCidr: string): Promise<void> {
    const t = parseBlockTarget(ipOrCidr);
    if (t.kind === 'blocked_ip') this.mirror.setBlockedIp(t.id, undefined);
    else this.mirror.setBlockedCidr(t.id, undefined);
  }

  async setRisk(sub: string, score: number, ttlS?: number): Promise<void> {
    const exp = ttlS === undefined ? Infinity : Date.now() + validateTtl(ttlS) * 1000;
    this.mirror.setRisk(validateUser(sub), { score: validateScore(score), expiresAtMs: exp });
  }

  recordAuthFailure(ip: string, nowMs: number): void {
    const r = this.cfg.remediation;
    if (!r.enabled) return;
    const key = canonicalIp(ip);
    if (key === undefined || this.mirror.isIpBlocked(key, nowMs)) return;
    let window = this.failures.get(key);
    if (window === undefined) {
      if (this.failures.size >= MAX_TRACKED_IPS) this.sweep(nowMs);
      if (this.failures.size >= MAX_TRACKED_IPS) return;
      this.failures.set(key, (window = []));
    }
    const from = nowMs - r.window_s * 1000;
    while (window.length > 0 && (window[0] as number) <= from) window.shift();
    window.push(nowMs);
    if (window.length < r.threshold) return;
    this.failures.delete(key);
    this.mirror.setBlockedIp(key, nowMs + r.block_ttl_s * 1000);
    const alert = autoBlockAlert(key, window.length, r.window_s, nowMs);
    this.alerts.unshift(alert);
    this.alerts.length = Math.min(this.alerts.length, MAX_ALERTS);
    this.deps.metrics.stateEvents.inc({ event: 'remediation_block' });
    this.deps.logger.warn({ alert }, 'auto-remediation: IP blocked after repeated authentication failures');
  }

  private sweep(nowMs: number): void {
    this.mirror.sweep(nowMs);
    const from = nowMs - this.cfg.remediation.window_s * 1000;
    for (const [ip, w] of this.failures) if ((w[w.length - 1] ?? 0) <= from) this.failures.delete(ip);
  }
}
