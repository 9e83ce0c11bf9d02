import type { PolicyConfig, ResourceConfig } from '../config/schema/policy.js';
import { CHECK_NAMES } from '../config/schema/policy.js';
import type { CheckTrace, NormalizedRequest } from '../model.js';
import type { Reason } from '../reasons.js';
import type { StateView } from '../state/types.js';
import { allowListGrants } from './allow-list.js';
import { contentHash } from '../config/hash.js';
import { CHECK_ORDER } from './order.js';
import { CLASSIFICATION_NAMES, CLASSIFICATION_RANK, type CheckName, ownValue, SENSITIVITY_NAMES, SENSITIVITY_RANK } from './ranks.js';
import { compileCaps, deviceVerified, isScore, type MfaRule, mfaEvidence, scoreFromClaim, stepUpChallenge } from './risk.js';
import { compileRoute, type CompiledRoute, isCanonicalPath, matchRoute } from './routes.js';
import { compileFrom, type PrincipalMatcher } from './service-pairs.js';
import { type CompiledWindow, compileWindow, type ZoneClock } from './time-window.js';
import type { CompiledPolicy, PolicyInput, PolicyOutcome } from './types.js';

interface CompiledResource {
  readonly name: string;
  readonly identity: ResourceConfig['identity'];
  readonly sensitivityRank: number;
  readonly classificationRank: number;
  readonly window: CompiledWindow | null;
  readonly service: string;
  readonly callers: readonly PrincipalMatcher[];
}

const MAX_DETAIL_PATH = 200;

/**
 * Compiles the policy section once (at startup and on every reload). Throws on a config the schema
 * would have rejected, so a reload with a bad policy keeps the old one. `evaluate` runs the checks
 * in the order documented on CHECK_ORDER (order.ts); each step below is numbered after it.
 */
export function compilePolicy(cfg: PolicyConfig): CompiledPolicy {
  return new Policy(cfg);
}

class Policy implements CompiledPolicy {
  readonly hash: string;
  readonly shadowing: boolean;
  readonly shadowedChecks: readonly CheckName[];
  readonly warnings: readonly string[];

  private readonly resources = new Map<string, CompiledResource>();
  private readonly routes: readonly CompiledRoute<CompiledResource>[];
  private readonly defaultResource: CompiledResource | undefined;
  private readonly shadowed: ReadonlySet<CheckName>;
  private readonly riskClaim: string;
  private readonly defaultScore: number;
  private readonly mfaAbove: number;
  private readonly deviceAbove: number;
  private readonly denyAbove: number;
  private readonly capFor: (score: number) => number;
  private readonly mfa: MfaRule;
  private readonly challengeMissing: string;
  private readonly challengeStale: string;
  private readonly deviceClaim: string;
  private readonly deviceHeader: string | undefined;
  private readonly clearanceClaim: string;
  private readonly allowedClaim: string;

  constructor(cfg: PolicyConfig) {
    this.hash = contentHash(cfg);
    const clocks = new Map<string, ZoneClock>();
    const globalWindow = cfg.time_window === undefined ? null : compileWindow(cfg.time_window, clocks);

    for (const [name, r] of Object.entries(cfg.resources)) {
      const service = r.service ?? name;
      this.resources.set(name, {
        name,
        identity: r.identity,
        sensitivityRank: SENSITIVITY_RANK.get(r.sensitivity) ?? 2,
        classificationRank: CLASSIFICATION_RANK.get(r.classification) ?? 3,
        window: r.time_window === undefined ? globalWindow : compileWindow(r.time_window, clocks),
        service,
        callers: cfg.service_pairs.filter((p) => p.to === service || p.to === '*').map((p) => compileFrom(p.from)),
      });
    }
    const resolve = (name: string, where: string) => {
      const r = this.resources.get(name);
      if (r === undefined) throw new Error(`policy: ${where} names unknown resource "${name}"`);
      return r;
    };
    this.routes = cfg.routes.map((route, i) => compileRoute(route, resolve(route.resource, `routes[${i}]`)));
    this.defaultResource = cfg.default_resource === undefined ? undefined : resolve(cfg.default_resource, 'default_resource');

    this.shadowedChecks = cfg.shadow ? [...CHECK_NAMES] : CHECK_NAMES.filter((c) => cfg.shadow_checks.includes(c));
    this.shadowed = new Set(this.shadowedChecks);
    this.shadowing = this.shadowed.size > 0;

    const risk = cfg.risk;
    this.riskClaim = risk.claim;
    this.defaultScore = risk.default_score;
    this.mfaAbove = risk.mfa_above;
    this.deviceAbove = risk.device_above;
    this.denyAbove = risk.deny_above;
    this.capFor = compileCaps(risk.sensitivity_caps);
    this.mfa = { amr: new Set(risk.mfa.amr), acr: new Set(risk.mfa.acr), maxAgeS: risk.mfa.max_age_s };
    this.challengeMissing = stepUpChallenge(risk.mfa.acr, risk.mfa.max_age_s, 'missing');
    this.challengeStale = stepUpChallenge(risk.mfa.acr, risk.mfa.max_age_s, 'stale');
    this.deviceClaim = risk.device.claim;
    this.deviceHeader = risk.device.header?.toLowerCase();
    this.clearanceClaim = cfg.clearance_claim;
    this.allowedClaim = cfg.allowed_resources_claim;
    this.warnings = collectWarnings(cfg, this.resources);
  }

  evaluate(input: PolicyInput, state: StateView, trace?: CheckTrace[]): PolicyOutcome {
    const { req, identity, nowMs } = input;
    let score = identity === null ? 0 : scoreFromClaim(ownValue(identity.claims, this.riskClaim), this.defaultScore);
    let shadowed: Reason[] | undefined;

    // 0. route
    const resource = this.resolveResource(req);
    if (resource === undefined) {
      // An unauthenticated caller gets the challenge a protected route gives: otherwise 403 vs 401
      // would let anyone map the policy's routes without a token.
      if (identity === null && req.principal === '') {
        const detail = `${this.routeDetail(req)} (answered as token_missing: the caller is unauthenticated)`;
        return this.deny(trace, 0, 'token_missing', score, undefined, detail, shadowed, undefined);
      }
      return this.deny(trace, 0, 'route_not_found', score, undefined, this.routeDetail(req), shadowed, undefined);
    }
    trace?.push({ check: 'route', verdict: 'pass', detail: `resource ${resource.name}` });

    // 1. identity requirement
    const hasPrincipal = req.principal !== '';
    const callerMissing =
      resource.identity === 'workload'
        ? !hasPrincipal
        : resource.identity === 'user'
          ? identity === null
          : identity === null && !hasPrincipal;
    if (callerMissing) {
      const reason = resource.identity === 'workload' ? 'workload_identity_required' : 'token_missing';
      const detail = `resource ${resource.name} requires identity "${resource.identity}"`;
      return this.deny(trace, 1, reason, score, resource, detail, shadowed, undefined);
    }
    trace?.push({ check: 'identity_requirement', verdict: 'pass', detail: resource.identity });

    // 2. state
    let capRank = 2;
    if (identity !== null) {
      let suspended: string;
      try {
        suspended = state.userSuspended(identity.sub, nowMs);
      } catch {
        suspended = 'unavailable';
      }
      if (suspended !== 'clear') {
        const reason = suspended === 'listed' ? 'user_suspended' : 'dependency_unavailable';
        const detail = suspended === 'listed' ? 'subject is suspended' : 'suspension list unavailable';
        if (!this.shadowed.has('state')) return this.deny(trace, 2, reason, score, resource, detail, shadowed, undefined);
        (shadowed ??= []).push(reason);
        trace?.push({ check: 'state', verdict: 'shadow_deny', reason, detail });
      }
      let live: number | undefined | 'unavailable';
      try {
        live = state.liveRisk(identity.sub, nowMs);
      } catch {
        live = 'unavailable';
      }
      if (live === 'unavailable') {
        const detail = 'live risk unavailable';
        if (!this.shadowed.has('state')) return this.deny(trace, 2, 'dependency_unavailable', score, resource, detail, shadowed, undefined);
        (shadowed ??= []).push('dependency_unavailable');
        trace?.push({ check: 'state', verdict: 'shadow_deny', reason: 'dependency_unavailable', detail });
      } else if (live !== undefined) {
        // A live score that is not in [0, 1] is a broken writer: fail towards the highest risk.
        const liveScore = isScore(live) ? live : 1;
        if (liveScore > score) score = liveScore;
      }
      if (trace !== undefined && suspended === 'clear' && live !== 'unavailable') {
        trace.push({ check: 'state', verdict: 'pass', detail: live === undefined ? 'no live risk' : `live risk ${String(live)}` });
      }

      // 3. risk
      capRank = this.capFor(score);
      let reason: Reason | undefined;
      let challenge: string | undefined;
      let detail: string | undefined;
      if (score > this.denyAbove) {
        reason = 'admin_approval_required';
        detail = `risk ${score} > deny_above ${this.denyAbove}`;
      } else if (resource.sensitivityRank > capRank) {
        reason = 'risk_too_high';
        detail = `risk ${score} caps sensitivity at ${SENSITIVITY_NAMES[capRank]}; ${resource.name} is ${SENSITIVITY_NAMES[resource.sensitivityRank]}`;
      } else {
        if (score > this.mfaAbove) {
          const mfa = mfaEvidence(identity.claims, this.mfa, nowMs);
          if (mfa !== 'ok') {
            reason = 'insufficient_user_authentication';
            challenge = mfa === 'stale' ? this.challengeStale : this.challengeMissing;
            detail = `risk ${score} > mfa_above ${this.mfaAbove}; MFA ${mfa === 'stale' ? 'older than max_age' : 'evidence missing'}`;
          }
        }
        if (
          reason === undefined &&
          score > this.deviceAbove &&
          !deviceVerified(identity.claims, this.deviceClaim, req.headers, this.deviceHeader)
        ) {
          reason = 'device_verification_required';
          detail = `risk ${score} > device_above ${this.deviceAbove}; device not verified`;
        }
      }
      if (reason !== undefined) {
        if (!this.shadowed.has('risk')) return this.deny(trace, 3, reason, score, resource, detail, shadowed, challenge);
        (shadowed ??= []).push(reason);
        trace?.push({ check: 'risk', verdict: 'shadow_deny', reason, detail });
      } else {
        trace?.push({ check: 'risk', verdict: 'pass', detail: `risk ${score}` });
      }
    } else if (trace !== undefined) {
      trace.push({ check: 'state', verdict: 'skip', detail: 'no user identity' });
      trace.push({ check: 'risk', verdict: 'skip', detail: 'no user identity' });
    }

    // 4. time window
    if (resource.window === null) {
      trace?.push({ check: 'time_window', verdict: 'skip', detail: 'no time window' });
    } else if (resource.window.allows(nowMs)) {
      trace?.push({ check: 'time_window', verdict: 'pass' });
    } else {
      const detail = resource.window.describe(nowMs);
      if (!this.shadowed.has('time_window')) {
        return this.deny(trace, 4, 'outside_time_window', score, resource, detail, shadowed, undefined);
      }
      (shadowed ??= []).push('outside_time_window');
      trace?.push({ check: 'time_window', verdict: 'shadow_deny', reason: 'outside_time_window', detail });
    }

    if (identity !== null) {
      // 5. resource allow list
      if (allowListGrants(ownValue(identity.claims, this.allowedClaim), resource.name, req.method, capRank)) {
        trace?.push({ check: 'resource', verdict: 'pass' });
      } else {
        const detail = `${this.allowedClaim} does not grant ${resource.name} for ${req.method} at sensitivity cap ${SENSITIVITY_NAMES[capRank]}`;
        if (!this.shadowed.has('resource')) {
          return this.deny(trace, 5, 'resource_not_allowed', score, resource, detail, shadowed, undefined);
        }
        (shadowed ??= []).push('resource_not_allowed');
        trace?.push({ check: 'resource', verdict: 'shadow_deny', reason: 'resource_not_allowed', detail });
      }

      // 6. clearance (missing or unknown value = public, the lowest)
      const clearance = ownValue(identity.claims, this.clearanceClaim);
      const clearanceRank = CLASSIFICATION_RANK.get(clearance) ?? 0;
      if (clearanceRank >= resource.classificationRank) {
        trace?.push({ check: 'clearance', verdict: 'pass' });
      } else {
        const detail = `clearance ${CLASSIFICATION_NAMES[clearanceRank]} < ${CLASSIFICATION_NAMES[resource.classificationRank]}`;
        if (!this.shadowed.has('clearance')) {
          return this.deny(trace, 6, 'clearance_insufficient', score, resource, detail, shadowed, undefined);
        }
        (shadowed ??= []).push('clearance_insufficient');
        trace?.push({ check: 'clearance', verdict: 'shadow_deny', reason: 'clearance_insufficient', detail });
      }
    } else if (trace !== undefined) {
      trace.push({ check: 'resource', verdict: 'skip', detail: 'no user identity' });
      trace.push({ check: 'clearance', verdict: 'skip', detail: 'no user identity' });
    }

    // 7. service pair
    if (!hasPrincipal) {
      trace?.push({ check: 'service_pair', verdict: 'skip', detail: 'no workload principal' });
    } else if (resource.callers.some((m) => m(req.principal))) {
      trace?.push({ check: 'service_pair', verdict: 'pass' });
    } else {
      const detail = `no service pair allows ${req.principal} to call ${resource.service}`;
      if (!this.shadowed.has('service_pair')) {
        return this.deny(trace, 7, 'service_pair_not_allowed', score, resource, detail, shadowed, undefined);
      }
      (shadowed ??= []).push('service_pair_not_allowed');
      trace?.push({ check: 'service_pair', verdict: 'shadow_deny', reason: 'service_pair_not_allowed', detail });
    }

    return { reason: 'allowed', riskScore: score, resource: resource.name, shadowed };
  }

  private resolveResource(req: NormalizedRequest): CompiledResource | undefined {
    if (Object.hasOwn(req.contextExtensions, 'resource')) {
      return this.resources.get(req.contextExtensions['resource'] ?? '');
    }
    const routed = matchRoute(this.routes, req);
    if (routed !== undefined || this.defaultResource === undefined) return routed;
    return isCanonicalPath(req.path) ? this.defaultResource : undefined;
  }

  private routeDetail(req: NormalizedRequest): string {
    if (Object.hasOwn(req.contextExtensions, 'resource')) {
      return `context_extensions resource "${req.contextExtensions['resource'] ?? ''}" is not configured`;
    }
    const path = req.path.length > MAX_DETAIL_PATH ? `${req.path.slice(0, MAX_DETAIL_PATH)}...` : req.path;
    return isCanonicalPath(req.path) ? `no route for ${req.method} ${req.host}${path}` : `path is not canonical: ${JSON.stringify(path)}`;
  }

  private deny(
    trace: CheckTrace[] | undefined,
    step: number,
    reason: Reason,
    riskScore: number,
    resource: CompiledResource | undefined,
    detail: string | undefined,
    shadowed: Reason[] | undefined,
    challenge: string | undefined,
  ): PolicyOutcome {
    if (trace !== undefined) {
      trace.push({ check: CHECK_ORDER[step]!.check, verdict: 'deny', reason, detail });
      for (let i = step + 1; i < CHECK_ORDER.length; i++) {
        trace.push({ check: CHECK_ORDER[i]!.check, verdict: 'skip', detail: 'not evaluated after a deny' });
      }
    }
    return { reason, riskScore, resource: resource?.name, challenge, detail, shadowed };
  }
}

function collectWarnings(cfg: PolicyConfig, resources: ReadonlyMap<string, CompiledResource>): string[] {
  const warnings: string[] = [];
  const services = new Set([...resources.values()].map((r) => r.service));
  for (const pair of cfg.service_pairs) {
    if (pair.to !== '*' && !services.has(pair.to)) warnings.push(`service pair ${pair.from} -> ${pair.to}: no resource has service "${pair.to}"`);
  }
  const routed = new Set([...cfg.routes.map((r) => r.resource), cfg.default_resource]);
  for (const name of resources.keys()) {
    if (!routed.has(name)) warnings.push(`resource ${name} is reachable only through context_extensions`);
  }
  if (cfg.routes.length === 0 && cfg.default_resource === undefined) {
    warnings.push('no routes and no default_resource: only requests with context_extensions.resource can be allowed');
  }
  return warnings;
}

