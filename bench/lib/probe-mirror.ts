import type { ExpiresAt, MirrorBuilder, RiskEntry, StateListing, StateMirror } from '../../src/state/mirror.js';

/**
 * A bench-only mirror for the simulated fleet of bench/state-scale.ts: it keeps only the users
 * the bench probes (suspended_user:w-*, written during the write load) and counts everything else.
 * 500 real mirrors of 1,000,000 entries do not fit in one machine's memory; what the fleet part
 * measures is Redis's side (command time, CPU, connections, propagation of the probe keys), which
 * does not depend on what a sidecar keeps. Each sidecar still reads the whole snapshot from Redis
 * and re-reads every invalidated key, as the product does, but does not decode the pages
 * (skipDecode): decoding a million entries takes ~0.3-0.6 s of a sidecar's own CPU, and 125
 * sidecars to a process on two shared cores would starve their heartbeats into a resync storm
 * that no real fleet (one core each) has. The probe keys are written after the fleet is in sync,
 * so they arrive through invalidations, never through a snapshot. The memory probe uses the real
 * Mirror and decoder.
 */
const KEPT = 'w-';

class CountingBuilder implements MirrorBuilder {
  readonly kept = new Map<string, ExpiresAt>();
  readonly counts = { suspended: 0, blockedIps: 0, blockedCidrs: 0, risk: 0 };

  addSuspended(sub: string, expiresAtMs: ExpiresAt): void {
    if (sub.startsWith(KEPT)) this.kept.set(sub, expiresAtMs);
    else this.counts.suspended++;
  }

  addBlockedIp(): void {
    this.counts.blockedIps++;
  }

  addBlockedCidr(): void {
    this.counts.blockedCidrs++;
  }

  addRisk(): void {
    this.counts.risk++;
  }
}

/** A snapshot decoder for ProbeMirror: the pages were read from Redis; nothing in them is kept. */
export function skipDecode(): void {}

export class ProbeMirror implements StateMirror {
  private lists = new CountingBuilder();

  isSuspended(sub: string, nowMs: number): boolean {
    return (this.lists.kept.get(sub) ?? -Infinity) > nowMs;
  }

  isIpBlocked(): boolean {
    return false;
  }

  riskScore(): number | undefined {
    return undefined;
  }

  setSuspended(sub: string, expiresAtMs: ExpiresAt | undefined): void {
    if (!sub.startsWith(KEPT)) return;
    if (expiresAtMs === undefined) this.lists.kept.delete(sub);
    else this.lists.kept.set(sub, expiresAtMs);
  }

  setBlockedIp(): void {}

  setBlockedCidr(): void {}

  setRisk(_sub: string, _entry: RiskEntry | undefined): void {}

  builder(): MirrorBuilder {
    return new CountingBuilder();
  }

  replace(from: MirrorBuilder): void {
    if (!(from instanceof CountingBuilder)) throw new Error('ProbeMirror.replace: a builder from another mirror');
    this.lists = from;
  }

  sweep(nowMs: number): void {
    for (const [k, e] of this.lists.kept) if (e <= nowMs) this.lists.kept.delete(k);
  }

  counts(): { suspended: number; blockedIps: number; blockedCidrs: number; risk: number } {
    const c = this.lists.counts;
    return { ...c, suspended: c.suspended + this.lists.kept.size };
  }

  list(): StateListing {
    return { counts: this.counts(), suspended: [], blocked_ips: [], blocked_cidrs: [], risk: [] };
  }
}
