import type { Authenticator } from '../identity/types.js';
import type { CompiledPolicy } from '../policy/types.js';
import type { Reason } from '../reasons.js';
import type { StateView } from '../state/types.js';
import type { AuthResult, CheckTrace, Decision, Identity, NormalizedRequest } from '../model.js';

/** One config's parts: a reload builds a new engine rather than swapping what this one reads. */
export interface EngineDeps {
  readonly authenticator: Authenticator;
  readonly state: StateView;
  readonly policy: CompiledPolicy;
  readonly nextId: () => string;
}

/** Reasons that count towards auto-remediation of the source IP (forged, expired, garbage tokens). */
const AUTH_FAILURES: ReadonlySet<Reason> = new Set<Reason>([
  'token_malformed',
  'token_invalid',
  'token_expired',
  'token_not_yet_valid',
  'token_lifetime_exceeded',
  'issuer_unknown',
  'audience_mismatch',
]);

/**
 * The decision pipeline, in its documented order:
 *   readiness → blocked IP → token (extract, verify) → policy (route, identity requirement,
 *   suspension, risk, time window, allow list, clearance, service pair).
 * The blocked-IP check runs before the token so that a blocked source cannot make the sidecar
 * verify signatures for it. Synchronous unless the authenticator must wait for a key refetch.
 */
export class DecisionEngine {
  constructor(private readonly deps: EngineDeps) {}

  decide(req: NormalizedRequest, nowMs: number, trace?: CheckTrace[]): Decision | Promise<Decision> {
    const authn = this.deps.authenticator;
    // Until some issuer has keys nothing can be decided. After that, an issuer whose keys are
    // missing only fails its own tokens (see afterAuth), so one broken IdP does not take all down.
    if (!authn.anyReady()) {
      trace?.push({ check: 'readiness', verdict: 'deny', reason: 'dependency_unavailable', detail: 'signing keys not loaded yet' });
      return this.deny('dependency_unavailable', 'signing keys not loaded', undefined);
    }
    trace?.push({ check: 'readiness', verdict: 'pass' });

    if (req.clientIp !== '') {
      const blocked = this.deps.state.ipBlocked(req.clientIp, nowMs);
      if (blocked !== 'clear') {
        const reason: Reason = blocked === 'listed' ? 'ip_blocked' : 'dependency_unavailable';
        const detail = blocked === 'listed' ? `ip ${req.clientIp}` : 'block list unavailable (state backend)';
        trace?.push({ check: 'ip_block', verdict: 'deny', reason, detail });
        return this.deny(reason, detail, undefined);
      }
      trace?.push({ check: 'ip_block', verdict: 'pass' });
    } else {
      trace?.push({ check: 'ip_block', verdict: 'skip', detail: 'no client ip' });
    }

    const extracted = authn.extractToken(req);
    if (extracted.kind === 'malformed') {
      return this.authFailed(req, nowMs, { ok: false, reason: 'token_malformed', detail: extracted.detail }, trace);
    }
    if (extracted.kind === 'none') {
      trace?.push({ check: 'token', verdict: 'skip', detail: 'no token presented' });
      return this.authorize(req, null, nowMs, trace);
    }
    const result = authn.authenticate(extracted.token, nowMs);
    if (result instanceof Promise) {
      return result.then((r) => this.afterAuth(req, r, nowMs, trace));
    }
    return this.afterAuth(req, result, nowMs, trace);
  }

  private afterAuth(req: NormalizedRequest, result: AuthResult, nowMs: number, trace?: CheckTrace[]): Decision {
    if (!result.ok) {
      if (result.fault === 'keys_unavailable') {
        // The issuer's JWKS is down: a dependency failure, not the client's fault (and no strike for its IP).
        trace?.push({ check: 'token', verdict: 'deny', reason: 'dependency_unavailable', detail: result.detail });
        return this.deny('dependency_unavailable', result.detail, undefined);
      }
      return this.authFailed(req, nowMs, result, trace);
    }
    trace?.push({ check: 'token', verdict: 'pass', detail: `iss=${result.identity.issuer} sub=${result.identity.sub}` });
    return this.authorize(req, result.identity, nowMs, trace);
  }

  private authFailed(req: NormalizedRequest, nowMs: number, result: AuthResult & { ok: false }, trace?: CheckTrace[]): Decision {
    trace?.push({ check: 'token', verdict: 'deny', reason: result.reason, detail: result.detail });
    if (req.clientIp !== '' && AUTH_FAILURES.has(result.reason)) this.deps.state.recordAuthFailure(req.clientIp, nowMs);
    return this.deny(result.reason, result.detail, undefined);
  }

  private authorize(req: NormalizedRequest, identity: Identity | null, nowMs: number, trace?: CheckTrace[]): Decision {
    const outcome = this.deps.policy.evaluate({ req, identity, nowMs }, this.deps.state, trace);
    return {
      allow: outcome.reason === 'allowed',
      reason: outcome.reason,
      decisionId: this.deps.nextId(),
      sub: identity?.sub,
      iss: identity?.issuer,
      aud: identity?.claims['aud'],
      riskScore: outcome.riskScore,
      resource: outcome.resource,
      challenge: outcome.challenge,
      detail: outcome.detail,
      shadowed: outcome.shadowed,
      claimHeaders: outcome.claimHeaders,
    };
  }

  deny(reason: Reason, detail: string | undefined, sub: string | undefined): Decision {
    return { allow: false, reason, decisionId: this.deps.nextId(), sub, detail };
  }
}
