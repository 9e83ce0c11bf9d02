import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema/index.js';
import { policySchema } from '../../src/config/schema/policy.js';
import { DEMO_CONFIG } from '../../src/config/defaults.js';
import type { CheckTrace } from '../../src/model.js';
import { CHECK_ORDER, compilePolicy } from '../../src/policy/index.js';
import { isReason } from '../../src/reasons.js';
import { compile, evaluate, type PolicyInputConfig, request, stubState, user, WEDNESDAY_NOON } from './fixtures.js';

const WEB = 'spiffe://cluster.local/ns/prod/sa/web';
const GOOD = { allowed_resources: ['*'], clearance_level: 'restricted', amr: ['mfa'], device_verified: true };

const config: PolicyInputConfig = {
  time_window: { timezone: 'UTC', start: '08:00', end: '18:59' },
  resources: {
    user_only: { sensitivity: 'high', classification: 'restricted' },
    workload_only: { identity: 'workload' },
    either: { identity: 'any', classification: 'confidential' },
  },
  routes: [
    { prefix: '/user', resource: 'user_only' },
    { prefix: '/workload', resource: 'workload_only' },
    { prefix: '/either', resource: 'either' },
  ],
  service_pairs: [
    { from: 'web', to: 'workload_only' },
    { from: 'web', to: 'either' },
  ],
};
const policy = compile(config);

describe('identity requirement of the resource', () => {
  it.each([
    ['/user', null, '', 'token_missing'],
    ['/user', null, WEB, 'token_missing'],
    ['/user', GOOD, '', 'allowed'],
    ['/workload', null, '', 'workload_identity_required'],
    ['/workload', GOOD, '', 'workload_identity_required'],
    ['/workload', null, WEB, 'allowed'],
    ['/either', null, '', 'token_missing'],
    ['/either', null, WEB, 'allowed'],
    ['/either', GOOD, '', 'allowed'],
    ['/either', GOOD, WEB, 'allowed'],
  ])('%s with user %j and principal %j -> %s', (path, claims, principal, reason) => {
    const out = evaluate(policy, { req: { path, principal }, identity: claims === null ? null : user(claims) });
    expect(out.reason).toBe(reason);
  });
});

describe('workload-only requests', () => {
  it('skip state, risk, allow list and clearance but not the time window or the service pair', () => {
    const state = stubState({ liveRisk: { alice: 1 } });
    const trace: CheckTrace[] = [];
    const out = evaluate(policy, { req: { path: '/either', principal: WEB }, identity: null, state, trace });
    expect(out).toEqual({ reason: 'allowed', riskScore: 0, resource: 'either', shadowed: undefined });
    expect(state.calls).toEqual([]);
    expect(trace.map((t) => `${t.check}:${t.verdict}`)).toEqual([
      'route:pass',
      'identity_requirement:pass',
      'state:skip',
      'risk:skip',
      'time_window:pass',
      'resource:skip',
      'clearance:skip',
      'service_pair:pass',
      'require:skip',
      'condition:skip',
    ]);
    const night = evaluate(policy, { req: { path: '/either', principal: WEB }, identity: null, nowMs: Date.parse('2026-03-04T22:00:00Z') });
    expect(night.reason).toBe('outside_time_window');
  });
});

describe('state', () => {
  it.each([
    [{ suspended: { alice: 'listed' as const } }, 'user_suspended', ['userSuspended:alice']],
    [{ suspended: { alice: 'unavailable' as const } }, 'dependency_unavailable', ['userSuspended:alice']],
    [{ liveRisk: { alice: 'unavailable' as const } }, 'dependency_unavailable', ['userSuspended:alice', 'liveRisk:alice']],
    [{ throws: true }, 'dependency_unavailable', ['userSuspended:alice']],
    [{ suspended: { bob: 'listed' as const } }, 'allowed', ['userSuspended:alice', 'liveRisk:alice']],
  ])('%j -> %s', (opts, reason, calls) => {
    const state = stubState(opts);
    expect(evaluate(policy, { req: { path: '/user' }, identity: user(GOOD), state }).reason).toBe(reason);
    expect(state.calls).toEqual(calls);
  });

  it('a state verdict outside the contract fails closed', () => {
    const state = { ...stubState(), userSuspended: () => 'maybe' as never };
    expect(evaluate(policy, { req: { path: '/user' }, identity: user(GOOD), state }).reason).toBe('dependency_unavailable');
  });
});

describe('check order: the first failing check decides', () => {
  // Each row fixes one more check; the reported reason walks down the documented order.
  const night = Date.parse('2026-03-04T20:00:00Z');
  it.each([
    ['route', { path: '/nowhere' }, {}, 'route_not_found'],
    ['identity', { path: '/user' }, null, 'token_missing'],
    ['state', { path: '/user' }, { suspendedUser: true }, 'user_suspended'],
    ['risk', { path: '/user' }, { risk_score: 0.9 }, 'admin_approval_required'],
    ['time window', { path: '/user' }, { risk_score: 0.2 }, 'outside_time_window'],
    ['resource', { path: '/user' }, { risk_score: 0.2, day: true }, 'resource_not_allowed'],
    ['clearance', { path: '/user' }, { risk_score: 0.2, day: true, allowed_resources: ['user_only'] }, 'clearance_insufficient'],
    [
      'service pair',
      { path: '/user', principal: 'spiffe://cluster.local/ns/prod/sa/batch' },
      { risk_score: 0.2, day: true, allowed_resources: ['user_only'], clearance_level: 'restricted' },
      'service_pair_not_allowed',
    ],
    [
      'none',
      { path: '/user' },
      { risk_score: 0.2, day: true, allowed_resources: ['user_only'], clearance_level: 'restricted' },
      'allowed',
    ],
  ])('%s', (_label, req, claims, reason) => {
    const { suspendedUser, day, ...rest } = (claims ?? {}) as Record<string, unknown>;
    const state = stubState(suspendedUser === true ? { suspended: { alice: 'listed' } } : {});
    const out = evaluate(policy, { req, identity: claims === null ? null : user(rest), state, nowMs: day === true ? WEDNESDAY_NOON : night });
    expect(out.reason).toBe(reason);
  });

  it('exports the documented order', () => {
    expect(CHECK_ORDER.map((c) => c.check)).toEqual([
      'route',
      'identity_requirement',
      'state',
      'risk',
      'time_window',
      'resource',
      'clearance',
      'service_pair',
      'require',
      'condition',
    ]);
    for (const c of CHECK_ORDER) for (const r of c.reasons) expect(isReason(r)).toBe(true);
  });
});

describe('shadow mode', () => {
  const failing = () => ({
    req: { path: '/user', principal: 'spiffe://cluster.local/ns/prod/sa/batch' },
    identity: user({ risk_score: 0.85 }),
    state: stubState({ suspended: { alice: 'listed' } }),
    nowMs: Date.parse('2026-03-04T20:00:00Z'),
  });

  it('global: every shadowable deny is recorded in order and the request is allowed', () => {
    const p = compile({ ...config, shadow: true });
    expect(p.shadowing).toBe(true);
    expect(p.shadowedChecks).toEqual(['state', 'risk', 'time_window', 'resource', 'clearance', 'service_pair', 'require', 'condition']);
    const trace: CheckTrace[] = [];
    const out = evaluate(p, { ...failing(), trace });
    expect(out).toEqual({
      reason: 'allowed',
      riskScore: 0.85,
      resource: 'user_only',
      shadowed: [
        'user_suspended',
        'admin_approval_required',
        'outside_time_window',
        'resource_not_allowed',
        'clearance_insufficient',
        'service_pair_not_allowed',
      ],
    });
    expect(trace.filter((t) => t.verdict === 'shadow_deny').map((t) => t.check)).toEqual([
      'state',
      'risk',
      'time_window',
      'resource',
      'clearance',
      'service_pair',
    ]);
  });

  it('global: route and identity requirement still deny', () => {
    const p = compile({ ...config, shadow: true });
    expect(evaluate(p, { req: { path: '/nowhere' } }).reason).toBe('route_not_found');
    expect(evaluate(p, { req: { path: '/user' }, identity: null }).reason).toBe('token_missing');
    expect(evaluate(p, { req: { path: '/workload' }, identity: null }).reason).toBe('workload_identity_required');
  });

  it('per check: shadowed denies are recorded, the first unshadowed deny decides', () => {
    const p = compile({ ...config, shadow_checks: ['state', 'risk', 'time_window'] });
    expect(p.shadowedChecks).toEqual(['state', 'risk', 'time_window']);
    const out = evaluate(p, failing());
    expect(out.reason).toBe('resource_not_allowed');
    expect(out.shadowed).toEqual(['user_suspended', 'admin_approval_required', 'outside_time_window']);
    expect(out.detail).toBe('allowed_resources does not grant user_only for GET at sensitivity cap low');
  });

  it('a shadowed step-up carries no challenge', () => {
    const p = compile({ ...config, shadow_checks: ['risk'] });
    const out = evaluate(p, { req: { path: '/user' }, identity: user({ ...GOOD, amr: [], risk_score: 0.35 }) });
    expect(out).toMatchObject({ reason: 'allowed', shadowed: ['insufficient_user_authentication'] });
    expect(out.challenge).toBeUndefined();
  });

  it('a shadowed state outage is recorded and the token risk stands', () => {
    const p = compile({ ...config, shadow_checks: ['state'] });
    const state = stubState({ liveRisk: { alice: 'unavailable' } });
    const out = evaluate(p, { req: { path: '/user' }, identity: user({ ...GOOD, risk_score: 0.1 }), state });
    expect(out).toMatchObject({ reason: 'allowed', riskScore: 0.1, shadowed: ['dependency_unavailable'] });
  });

  it('is off by default', () => {
    expect(policy.shadowing).toBe(false);
    expect(policy.shadowedChecks).toEqual([]);
    expect(evaluate(policy, { req: { path: '/user' }, identity: user(GOOD) }).shadowed).toBeUndefined();
  });
});

describe('trace', () => {
  it('records a deny and marks the later checks as not evaluated', () => {
    const trace: CheckTrace[] = [];
    evaluate(policy, { req: { path: '/user' }, identity: user({ risk_score: 0.9 }), trace });
    expect(trace).toEqual([
      { check: 'route', verdict: 'pass', detail: 'resource user_only' },
      { check: 'identity_requirement', verdict: 'pass', detail: 'user' },
      { check: 'state', verdict: 'pass', detail: 'no live risk' },
      { check: 'risk', verdict: 'deny', reason: 'admin_approval_required', detail: 'risk 0.9 > deny_above 0.8' },
      { check: 'time_window', verdict: 'skip', detail: 'not evaluated after a deny' },
      { check: 'resource', verdict: 'skip', detail: 'not evaluated after a deny' },
      { check: 'clearance', verdict: 'skip', detail: 'not evaluated after a deny' },
      { check: 'service_pair', verdict: 'skip', detail: 'not evaluated after a deny' },
      { check: 'require', verdict: 'skip', detail: 'not evaluated after a deny' },
      { check: 'condition', verdict: 'skip', detail: 'not evaluated after a deny' },
    ]);
  });

  it('gives the same outcome with and without a trace', () => {
    const args = { req: { path: '/user' }, identity: user({ ...GOOD, risk_score: 0.35, amr: [] }) };
    expect(evaluate(policy, { ...args, trace: [] })).toEqual(evaluate(policy, args));
  });
});

describe('hash', () => {
  it('is 12 hex digits, independent of key order, and changes with the policy', () => {
    const a = compilePolicy(policySchema.parse({ shadow: false, resources: { a: {}, b: {} } }));
    const b = compilePolicy(policySchema.parse({ resources: { b: {}, a: {} }, shadow: false }));
    const c = compilePolicy(policySchema.parse({ resources: { a: {}, b: { sensitivity: 'high' } } }));
    expect(a.hash).toMatch(/^[0-9a-f]{12}$/);
    expect(a.hash).toBe(b.hash);
    expect(c.hash).not.toBe(a.hash);
  });
});

describe('warnings', () => {
  it('names dead service pairs and resources no route reaches', () => {
    const p = compile({
      resources: { a: {}, b: {} },
      routes: [{ prefix: '/a', resource: 'a' }],
      service_pairs: [{ from: 'web', to: 'nowhere' }],
    });
    expect(p.warnings).toEqual([
      'service pair web -> nowhere: no resource has service "nowhere"',
      'resource b is reachable only through context_extensions',
    ]);
  });
});

describe('fail closed on anything', () => {
  it('never throws and always answers a known reason, for arbitrary claims, paths and principals', () => {
    const p = compile({ ...config, default_resource: 'either' });
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom('risk_score', 'allowed_resources', 'clearance_level', 'amr', 'acr', 'auth_time', 'device_verified', '__proto__'),
          fc.jsonValue(),
        ),
        fc.string(),
        fc.constantFrom('', WEB, 'spiffe://', 'spiffe:///', 'x'),
        fc.boolean(),
        (claims, path, principal, withUser) => {
          const out = p.evaluate({ req: request({ path, principal }), identity: withUser ? user(claims) : null, nowMs: WEDNESDAY_NOON }, stubState(), []);
          expect(isReason(out.reason)).toBe(true);
          expect(out.riskScore).toBeGreaterThanOrEqual(0);
          expect(out.riskScore).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('the demo policy', () => {
  const demo = compilePolicy(configSchema.parse(DEMO_CONFIG).policy);
  const staff = user({ allowed_resources: ['profile', 'orders', 'payments'], clearance_level: 'confidential', risk_score: 0.1 });
  it.each([
    ['/api/orders/1', staff, '', WEDNESDAY_NOON, 'allowed'],
    ['/api/payments', staff, '', WEDNESDAY_NOON, 'allowed'],
    ['/api/payments', staff, '', Date.parse('2026-03-07T12:00:00Z'), 'outside_time_window'],
    ['/admin', staff, '', WEDNESDAY_NOON, 'resource_not_allowed'],
    ['/internal/api', null, 'spiffe://cluster.local/ns/prod/sa/web', WEDNESDAY_NOON, 'allowed'],
    ['/internal/api', null, 'spiffe://cluster.local/ns/prod/sa/batch', WEDNESDAY_NOON, 'service_pair_not_allowed'],
    ['/elsewhere', staff, '', WEDNESDAY_NOON, 'route_not_found'],
  ])('%s -> %s', (path, identity, principal, nowMs, reason) => {
    expect(evaluate(demo, { req: { path, principal }, identity, nowMs }).reason).toBe(reason);
  });
});
