import type { StateListing } from './mirror.js';
import type { SecurityAlert } from './remediation.js';
/**
 * Suspensions, IP blocks and live risk, as seen by the hot path. Every method is synchronous and
 * answers from process memory: implementations keep an in-process mirror current in the background.
 */
export type ListVerdict = 'clear' | 'listed' | 'unavailable';

export interface StateView {
  userSuspended(sub: string, nowMs: number): ListVerdict;
  /** Exact IP or any blocked CIDR containing it. */
  ipBlocked(ip: string, nowMs: number): ListVerdict;
  /** Live risk override (0..1) for the user, undefined when none, 'unavailable' when failing closed. */
  liveRisk(sub: string, nowMs: number): number | undefined | 'unavailable';
  /** Count a failed authentication from this IP for auto-remediation. Must not block or throw. */
  recordAuthFailure(ip: string, nowMs: number): void;
}

export interface StateStore extends StateView {
  /** What the mirror holds now, for the live page (never on the hot path). */
  inspect(nowMs: number, limit: number): StateListing;
  /** The newest security_alerts entries; resolves within its own deadline, [] when unreachable. */
  recentAlerts(limit: number): Promise<readonly SecurityAlert[]>;
  start(): Promise<void>;
  /** For /readyz and metrics. */
  health(): StateHealth;
  close(): Promise<void>;
  /** Admin writes (the CLI and tests use these; other tools may write the keys directly). */
  suspendUser(sub: string, ttlS: number, reason?: string): Promise<void>;
  unsuspendUser(sub: string): Promise<void>;
  blockIp(ipOrCidr: string, ttlS: number): Promise<void>;
  unblockIp(ipOrCidr: string): Promise<void>;
  setRisk(sub: string, score: number, ttlS?: number): Promise<void>;
}

export interface StateHealth {
  readonly backend: 'memory' | 'redis';
  readonly connected: boolean;
  /** Milliseconds since the mirror was last known to be in sync (0 for memory). */
  readonly mirrorAgeMs: number;
  readonly ready: boolean;
}
