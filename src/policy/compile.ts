import { compileClaimPath, describeClaimPath } from '../config/claim-path.js';
import type { PolicyConfig, ResourceConfig, RouteConfig } from '../config/schema/policy.js';
import { CHECK_NAMES } from '../config/schema/policy.js';
import type { CheckTrace, Identity, NormalizedRequest } from '../model.js';
import type { Reason } from '../reasons.js';
import type { StateView } from '../state/types.js';
import { allowListGrants } from './allow-list.js';
import { type Activation, type CompiledCondition, compileCondition, newActivation, ResourceVars } from './cel.js';
import { compileClaimHeaders, type ClaimHeaders } from './claim-headers.js';
import { contentHash } from '../config/hash.js';
import { CHECK_ORDER, type PolicyCheckName } from './order.js';
import { CLASSIFICATION_NAMES, CLASSIFICATION_RANK, type CheckName, SENSITIVITY_NAMES, SENSITIVITY_RANK } from './ranks.js';
import { compileRequirement, type CompiledRequirement, unmet } from './require.js';
import { compileCaps, deviceVerified, isScore, type MfaRule, mfaEvidence, scoreFromClaim, stepUpChallenge } from './risk.js';
import { RouteIndex } from './route-index.js';
import { isCanonicalPath, type RouteSpec } from './routes.js';
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
  readonly vars: ResourceVars;
  /** What a request for this resource is held to when no route (or context_extensions) picked it. Set once, right after. */
  target: Target;
}

/**
 * What the router picks: the resource, plus the `require` and `when` of the resource and of the
 * matched route. The route matcher only carries it (CompiledRoute<Target>), so it can change
 * underneath without knowing about requirements or conditions.
 */
interface Target {
  readonly resource: CompiledResource;
  readonly requirement: CompiledRequirement | null;
  readonly conditions: readonly CompiledCondition[];
  readonly usesNow: boolean;
}

/** The state of one evaluation. One per policy, refilled per call: evaluate is synchronous. */
interface Ctx {
  req: NormalizedRequest;
  identity: Identity | null;
  nowMs: number;
  state: StateView;
  target: Target | undefined;
  score: number;
  capRank: number;
  tracing: boolean;
}

/** A step's verdict: undefined is a pass with nothing to say (the hot path allocates nothing). */
type Verdict = undefined | Note | Fail;
interface Note {
  readonly kind: 'pass' | 'skip';
  readonly detail?: string;
}
interface Fail {
  readonly kind: 'deny';
  readonly reason: Reason;
  readonly detail: string;
  readonly challenge?: string | undefined;
}
type Step = (c: Ctx) => Verdict;

/** A row of the check table: the loop in `evaluate` owns shadowing, tracing and skipping. */
interface Check {
  readonly name: PolicyCheckName;
  readonly shadowed: boolean;
  /** Run in order; a shadowed deny of one step does not stop the next (state: suspension, then live risk). A skip stops the check. */
  readonly steps: readonly Step[];
}

const skip = (detail: string): Note => ({ kind: 'skip', detail });
const pass = (detail: string): Note => ({ kind: 'pass', detail });
const NO_USER = skip('no user identity');
const EMPTY_CLAIMS: Readonly<Record<string, unknown>> = Object.freeze({});
const NO_STRINGS: readonly string[] = Object.freeze([]);

const MAX_DETAIL_PATH = 200;

/**
 * Compiles the policy section once (at startup and on every reload). Throws on a config the schema
 * would have rejected, or a `when` expression that does not compile (the message starts with its
 * path), so a reload with a bad policy keeps the old one. `evaluate` walks the check table built
 * here, in the order of POLICY_CHECKS (config/schema/checks.ts).
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
  private readonly routes: RouteIndex<RouteSpec & { readonly compiled: Target }>;
  private readonly defaultResource: CompiledResource | undefined;
  private readonly table: readonly Check[];
  private readonly ctx: Ctx;
  private readonly activation: Activation = newActivation();
  private readonly claimHeaders: ((identity: Identity) => ClaimHeaders) | null;

  constructor(cfg: PolicyConfig) {
    this.hash = contentHash(cfg);
    const clocks = new Map<string, ZoneClock>();
    const globalWindow = cfg.time_window === undefined ? null : compileWindow(cfg.time_window, clocks);

    for (const [name, r] of Object.entries(cfg.resources)) {
      const service = r.service ?? name;
      const conditions = compileWhen(r.when, `policy.resources.${name}.when`);
      const resource: CompiledResource = {
        name,
        identity: r.identity,
        sensitivityRank: SENSITIVITY_RANK.get(r.sensitivity) ?? 2,
        classificationRank: CLASSIFICATION_RANK.get(r.classification) ?? 3,
        window: r.time_window === undefined ? globalWindow : compileWindow(r.time_window, clocks),
        service,
        callers: cfg.service_pairs.filter((p) => p.to === service || p.to === '*').map((p) => compileFrom(p.from)),
        vars: new ResourceVars(name, service, r.sensitivity, r.classification),
        target: undefined!,
      };
      resource.target = makeTarget(resource, [r.require], conditions);
      this.resources.set(name, resource);
    }
    const resolve = (name: string, where: string) => {
      const r = this.resources.get(name);
      if (r === undefined) throw new Error(`policy: ${where} names unknown resource "${name}"`);
      return r;
    };
    this.routes = new RouteIndex(cfg.routes.map((route, i) => ({ ...route, compiled: this.routeTarget(route, i, resolve(route.resource, `routes[${i}]`), cfg) })));
    this.defaultResource = cfg.default_resource === undefined ? undefined : resolve(cfg.default_resource, 'default_resource');

    this.shadowedChecks = cfg.shadow ? [...CHECK_NAMES] : CHECK_NAMES.filter((c) => cfg.shadow_checks.includes(c));
    const shadowed = new Set<string>(this.shadowedChecks);
    this.shadowing = shadowed.size > 0;
    this.claimHeaders = compileClaimHeaders(cfg.headers.claims);

    const steps = this.compileSteps(cfg);
    this.table = CHECK_ORDER.map((c) => ({ name: c.check, shadowed: c.shadowable && shadowed.has(c.check), steps: steps[c.check] }));
    this.ctx = { req: undefined!, identity: null, nowMs: 0, state: undefined!, target: undefined, score: 0, capRank: 2, tracing: false };
    this.warnings = collectWarnings(cfg, this.resources);
  }

  evaluate(input: PolicyInput, state: StateView, trace?: CheckTrace[]): PolicyOutcome {
    const c = this.ctx;
    c.req = input.req;
    c.identity = input.identity;
    c.nowMs = input.nowMs;
    c.state = state;
    c.target = undefined;
    c.score = this.tokenScore(input.identity);
    c.capRank = 2;
    c.tracing = trace !== undefined;
    let shadowed: Reason[] | undefined;

    const table = this.table;
    for (let i = 0; i < table.length; i++) {
      const check = table[i]!;
      let failed = false;
      let note: Note | undefined;
      for (let s = 0; s < check.steps.length; s++) {
        const v = check.steps[s]!(c);
        if (v === undefined) continue;
        if (v.kind === 'deny') {
          if (!check.shadowed) return this.deny(trace, i, v, c, shadowed);
          (shadowed ??= []).push(v.reason);
          trace?.push({ check: check.name, verdict: 'shadow_deny', reason: v.reason, detail: v.detail });
          failed = true;
        } else {
          note = v;
          if (v.kind === 'skip') break;
        }
      }
      if (trace !== undefined && !failed) {
        trace.push(note?.detail === undefined ? { check: check.name, verdict: note?.kind ?? 'pass' } : { check: check.name, verdict: note.kind, detail: note.detail });
      }
    }
    const identity = c.identity;
    const claimHeaders = this.claimHeaders !== null && identity !== null ? this.claimHeaders(identity) : undefined;
    return { reason: 'allowed', riskScore: c.score, resource: c.target!.resource.name, shadowed, claimHeaders };
  }

  private deny(trace: CheckTrace[] | undefined, step: number, f: Fail, c: Ctx, shadowed: Reason[] | undefined): PolicyOutcome {
    if (trace !== undefined) {
      trace.push({ check: this.table[step]!.name, verdict: 'deny', reason: f.reason, detail: f.detail });
      for (let i = step + 1; i < this.table.length; i++) {
        trace.push({ check: this.table[i]!.name, verdict: 'skip', detail: 'not evaluated after a deny' });
      }
    }
    return { reason: f.reason, riskScore: c.score, resource: c.target?.resource.name, challenge: f.challenge, detail: f.detail, shadowed };
  }

  private tokenScore!: (identity: Identity | null) => number;

  /** One entry per check of POLICY_CHECKS; the Record type makes a check without steps a compile error. */
  private compileSteps(cfg: PolicyConfig): Record<PolicyCheckName, readonly Step[]> {
    const risk = cfg.risk;
    const riskClaim = compileClaimPath(risk.claim);
    const defaultScore = risk.default_score;
    this.tokenScore = (identity) => (identity === null ? 0 : scoreFromClaim(riskClaim(identity.claims), defaultScore));
    const capFor = compileCaps(risk.sensitivity_caps);
    const mfa: MfaRule = { amr: new Set(risk.mfa.amr), acr: new Set(risk.mfa.acr), maxAgeS: risk.mfa.max_age_s };
    const challengeMissing = stepUpChallenge(risk.mfa.acr, risk.mfa.max_age_s, 'missing');
    const challengeStale = stepUpChallenge(risk.mfa.acr, risk.mfa.max_age_s, 'stale');
    const deviceClaim = compileClaimPath(risk.device.claim);
    const deviceHeader = risk.device.header?.toLowerCase();
    const clearanceClaim = compileClaimPath(cfg.clearance_claim);
    const allowedPath = cfg.allowed_resources_claim;
    const allowedClaim = allowedPath === null ? null : compileClaimPath(allowedPath);
    const allowedName = allowedPath === null ? '' : describeClaimPath(allowedPath);
    const fail = (reason: Reason, detail: string, challenge?: string): Fail => ({ kind: 'deny', reason, detail, challenge });

    const route: Step = (c) => {
      const target = this.resolveTarget(c.req);
      if (target === undefined) {
        // An unauthenticated caller gets the challenge a protected route gives: otherwise 403 vs 401
        // would let anyone map the policy's routes without a token.
        if (c.identity === null && c.req.principal === '') {
          return fail('token_missing', `${this.routeDetail(c.req)} (answered as token_missing: the caller is unauthenticated)`);
        }
        return fail('route_not_found', this.routeDetail(c.req));
      }
      c.target = target;
      return c.tracing ? pass(`resource ${target.resource.name}`) : undefined;
    };

    const identityRequirement: Step = (c) => {
      const resource = c.target!.resource;
      const hasPrincipal = c.req.principal !== '';
      const missing =
        resource.identity === 'workload' ? !hasPrincipal : resource.identity === 'user' ? c.identity === null : c.identity === null && !hasPrincipal;
      if (missing) {
        const reason = resource.identity === 'workload' ? 'workload_identity_required' : 'token_missing';
        return fail(reason, `resource ${resource.name} requires identity "${resource.identity}"`);
      }
      return c.tracing ? pass(resource.identity) : undefined;
    };

    const suspension: Step = (c) => {
      if (c.identity === null) return NO_USER;
      let suspended: string;
      try {
        suspended = c.state.userSuspended(c.identity.sub, c.nowMs);
      } catch {
        suspended = 'unavailable';
      }
      if (suspended === 'clear') return undefined;
      return suspended === 'listed' ? fail('user_suspended', 'subject is suspended') : fail('dependency_unavailable', 'suspension list unavailable');
    };

    const liveRisk: Step = (c) => {
      let live: number | undefined | 'unavailable';
      try {
        live = c.state.liveRisk(c.identity!.sub, c.nowMs);
      } catch {
        live = 'unavailable';
      }
      if (live === 'unavailable') return fail('dependency_unavailable', 'live risk unavailable');
      if (live !== undefined) {
        // A live score that is not in [0, 1] is a broken writer: fail towards the highest risk.
        const liveScore = isScore(live) ? live : 1;
        if (liveScore > c.score) c.score = liveScore;
      }
      return c.tracing ? pass(live === undefined ? 'no live risk' : `live risk ${String(live)}`) : undefined;
    };

    const riskTier: Step = (c) => {
      const identity = c.identity;
      if (identity === null) return NO_USER;
      const score = c.score;
      const resource = c.target!.resource;
      const capRank = (c.capRank = capFor(score));
      if (score > risk.deny_above) return fail('admin_approval_required', `risk ${score} > deny_above ${risk.deny_above}`);
      if (resource.sensitivityRank > capRank) {
        return fail(
          'risk_too_high',
          `risk ${score} caps sensitivity at ${SENSITIVITY_NAMES[capRank]}; ${resource.name} is ${SENSITIVITY_NAMES[resource.sensitivityRank]}`,
        );
      }
      if (score > risk.mfa_above) {
        const evidence = mfaEvidence(identity.claims, mfa, c.nowMs);
        if (evidence !== 'ok') {
          return fail(
            'insufficient_user_authentication',
            `risk ${score} > mfa_above ${risk.mfa_above}; MFA ${evidence === 'stale' ? 'older than max_age' : 'evidence missing'}`,
            evidence === 'stale' ? challengeStale : challengeMissing,
          );
        }
      }
      if (score > risk.device_above && !deviceVerified(deviceClaim(identity.claims), c.req.headers, deviceHeader)) {
        return fail('device_verification_required', `risk ${score} > device_above ${risk.device_above}; device not verified`);
      }
      return c.tracing ? pass(`risk ${score}`) : undefined;
    };

    const NO_WINDOW = skip('no time window');
    const timeWindow: Step = (c) => {
      const window = c.target!.resource.window;
      if (window === null) return NO_WINDOW;
      return window.allows(c.nowMs) ? undefined : fail('outside_time_window', window.describe(c.nowMs));
    };

    const ALLOW_LIST_OFF = skip('allowed_resources_claim is null');
    const allowList: Step = (c) => {
      if (c.identity === null) return NO_USER;
      if (allowedClaim === null) return ALLOW_LIST_OFF;
      const name = c.target!.resource.name;
      if (allowListGrants(allowedClaim(c.identity.claims), name, c.req.method, c.capRank)) return undefined;
      return fail('resource_not_allowed', `${allowedName} does not grant ${name} for ${c.req.method} at sensitivity cap ${SENSITIVITY_NAMES[c.capRank]}`);
    };

    const clearance: Step = (c) => {
      if (c.identity === null) return NO_USER;
      // A missing or unknown value is public, the lowest.
      const rank = CLASSIFICATION_RANK.get(clearanceClaim(c.identity.claims)) ?? 0;
      const needed = c.target!.resource.classificationRank;
      if (rank >= needed) return undefined;
      return fail('clearance_insufficient', `clearance ${CLASSIFICATION_NAMES[rank]} < ${CLASSIFICATION_NAMES[needed]}`);
    };

    const NO_PRINCIPAL = skip('no workload principal');
    const servicePair: Step = (c) => {
      const principal = c.req.principal;
      if (principal === '') return NO_PRINCIPAL;
      const resource = c.target!.resource;
      if (resource.callers.some((m) => m(principal))) return undefined;
      return fail('service_pair_not_allowed', `no service pair allows ${principal} to call ${resource.service}`);
    };

    const NO_REQUIREMENT = skip('no require');
    const requirement: Step = (c) => {
      const req = c.target!.requirement;
      if (req === null) return NO_REQUIREMENT;
      const identity = c.identity;
      const f = unmet(req, identity?.roles ?? NO_STRINGS, identity?.scopes ?? NO_STRINGS);
      return f === undefined ? undefined : fail(f.reason, f.detail, f.challenge);
    };

    const NO_CONDITION = skip('no when');
    const conditions: Step = (c) => {
      const target = c.target!;
      const list = target.conditions;
      if (list.length === 0) return NO_CONDITION;
      this.fillActivation(c, target);
      for (let i = 0; i < list.length; i++) {
        const cond = list[i]!;
        let result: unknown;
        try {
          result = cond.run(this.activation);
        } catch (err) {
          return fail('condition_error', `${cond.path}: ${firstLine(err)}`);
        }
        if (result === true) continue;
        if (result === false) return fail('condition_failed', `${cond.path}: ${cond.source} is false`);
        return fail('condition_error', `${cond.path}: ${cond.source} is not a bool`);
      }
      return c.tracing ? pass(`${list.length} true`) : undefined;
    };

    return {
      route: [route],
      identity_requirement: [identityRequirement],
      state: [suspension, liveRisk],
      risk: [riskTier],
      time_window: [timeWindow],
      resource: [allowList],
      clearance: [clearance],
      service_pair: [servicePair],
      require: [requirement],
      condition: [conditions],
    };
  }

  /** Refills the one activation in place; `now` is set only when some condition reads it. */
  private fillActivation(c: Ctx, target: Target): void {
    const a = this.activation;
    const r = a.request;
    const req = c.req;
    r.method = req.method;
    r.path = req.path;
    r.host = req.host;
    r.headers = req.headers;
    r.ip = req.clientIp;
    a.principal = req.principal;
    a.resource = target.resource.vars;
    const v = a.identity;
    const identity = c.identity;
    if (identity === null) {
      a.claims = EMPTY_CLAIMS;
      v.sub = '';
      v.roles = NO_STRINGS;
      v.scopes = NO_STRINGS;
      v.issuer = '';
    } else {
      a.claims = identity.claims;
      v.sub = identity.sub;
      v.roles = identity.roles ?? NO_STRINGS;
      v.scopes = identity.scopes ?? NO_STRINGS;
      v.issuer = identity.issuer;
    }
    if (target.usesNow) a.now.setTime(c.nowMs);
  }

  private routeTarget(route: RouteConfig, i: number, resource: CompiledResource, cfg: PolicyConfig): Target {
    if (route.require === undefined && route.when === undefined) return resource.target;
    const own = compileWhen(route.when, `policy.routes.${i}.when`);
    const r = cfg.resources[resource.name];
    return makeTarget(resource, [r?.require, route.require], [...resource.target.conditions, ...own]);
  }

  private resolveTarget(req: NormalizedRequest): Target | undefined {
    if (Object.hasOwn(req.contextExtensions, 'resource')) {
      return this.resources.get(req.contextExtensions['resource'] ?? '')?.target;
    }
    const routed = this.routes.match(req)?.compiled;
    if (routed !== undefined || this.defaultResource === undefined) return routed;
    return isCanonicalPath(req.path) ? this.defaultResource.target : undefined;
  }

  private routeDetail(req: NormalizedRequest): string {
    if (Object.hasOwn(req.contextExtensions, 'resource')) {
      return `context_extensions resource "${req.contextExtensions['resource'] ?? ''}" is not configured`;
    }
    const path = req.path.length > MAX_DETAIL_PATH ? `${req.path.slice(0, MAX_DETAIL_PATH)}...` : req.path;
    return isCanonicalPath(req.path) ? `no route for ${req.method} ${req.host}${path}` : `path is not canonical: ${JSON.stringify(path)}`;
  }
}

function makeTarget(resource: CompiledResource, require: Parameters<typeof compileRequirement>[0], conditions: readonly CompiledCondition[]): Target {
  return { resource, requirement: compileRequirement(require), conditions, usesNow: conditions.some((c) => c.usesNow) };
}

function compileWhen(when: readonly string[] | undefined, path: string): CompiledCondition[] {
  return (when ?? []).map((src, i) => compileCondition(src, `${path}.${i}`));
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
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
