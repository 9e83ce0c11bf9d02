import type { ListVerdict, StateView } from './types.js';
import { Mirror, type StateListing, type StateMirror } from './mirror.js';

export type ListName = 'suspended_users' | 'blocked_ips' | 'user_risk';

/**
 * The hot path shared by both stores: a known, unexpired entry always wins ('listed' beats
 * 'unavailable', so a suspended user stays denied through an outage); only the absence of an
 * entry depends on whether the mirror can still be trusted.
 */
export abstract class MirroredStateView implements StateView {
  constructor(protected readonly mirror: StateMirror = new Mirror()) {}

  /** Whether a missing entry in this list may be read as 'clear' at this moment. */
  protected abstract trusted(list: ListName, nowMs: number): boolean;

  abstract recordAuthFailure(ip: string, nowMs: number): void;

  inspect(nowMs: number, limit: number): StateListing {
    return this.mirror.list(nowMs, limit);
  }

  userSuspended(sub: string, nowMs: number): ListVerdict {
    if (this.mirror.isSuspended(sub, nowMs)) return 'listed';
    return this.trusted('suspended_users', nowMs) ? 'clear' : 'unavailable';
  }

  ipBlocked(ip: string, nowMs: number): ListVerdict {
    if (this.mirror.isIpBlocked(ip, nowMs)) return 'listed';
    return this.trusted('blocked_ips', nowMs) ? 'clear' : 'unavailable';
  }

  liveRisk(sub: string, nowMs: number): number | undefined | 'unavailable' {
    const score = this.mirror.riskScore(sub, nowMs);
    if (score !== undefined) return score;
    return this.trusted('user_risk', nowMs) ? undefined : 'unavailable';
  }
}
