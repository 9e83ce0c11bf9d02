import type { CheckTrace, Identity, NormalizedRequest } from '../model.js';
import type { Reason } from '../reasons.js';
import type { StateView } from '../state/types.js';

export interface PolicyInput {
  readonly req: NormalizedRequest;
  /** Verified user identity, or null when the request carried no token. */
  readonly identity: Identity | null;
  readonly nowMs: number;
}

export interface PolicyOutcome {
  /** 'allowed' or the first deny reason in check order (shadowed denies do not stop evaluation). */
  readonly reason: Reason;
  readonly riskScore: number;
  readonly resource?: string | undefined;
  readonly challenge?: string | undefined;
  readonly detail?: string | undefined;
  readonly shadowed?: readonly Reason[] | undefined;
  /** `policy.headers.claims` pairs for an allow with a user identity. */
  readonly claimHeaders?: readonly (readonly [string, string])[] | undefined;
}

/**
 * The authorization half of the pipeline, compiled once from config. `evaluate` is synchronous and
 * pure apart from reading `state`. When `trace` is given every check appends its verdict (explain).
 */
export interface CompiledPolicy {
  /** Hash of the policy source, reported in logs and metrics to show which version is active. */
  readonly hash: string;
  readonly shadowing: boolean;
  /** The checks whose denies are only recorded (all shadowable ones under global shadow). */
  readonly shadowedChecks: readonly string[];
  /** Config that is valid but probably not what was meant (unreachable resources, dead pairs), for startup logs. */
  readonly warnings: readonly string[];
  evaluate(input: PolicyInput, state: StateView, trace?: CheckTrace[]): PolicyOutcome;
}
