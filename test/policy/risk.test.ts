import { describe, expect, it } from 'vitest';
import { compileCaps, mfaEvidence, scoreFromClaim, stepUpChallenge } from '../../src/policy/risk.js';
import { compile, evaluate, type PolicyInputConfig, stubState, user, WEDNESDAY_NOON } from './fixtures.js';

const GRANTS = { allowed_resources: ['*'], clearance_level: 'restricted' };
const MFA = { amr: ['pwd', 'mfa'] };
const DEVICE = { device_verified: true };

const base: PolicyInputConfig = {
  resources: {
    low: { sensitivity: 'low' },
    medium: { sensitivity: 'medium' },
    high: { sensitivity: 'high' },
  },
  routes: [
    { prefix: '/low', resource: 'low' },
    { prefix: '/medium', resource: 'medium' },
    { prefix: '/high', resource: 'high' },
  ],
};
const policy = compile(base);

const CHALLENGE_LEVEL =
  'Bearer error="insufficient_user_authentication", error_description="A different authentication level is required"';

describe('risk tiers (defaults: mfa > 0.3, cap medium > 0.4, device > 0.5, cap low > 0.7, deny > 0.8)', () => {
  it.each([
    ['low', 0, {}, 'allowed'],
    ['low', 0.3, {}, 'allowed'],
    ['low', 0.3000001, {}, 'insufficient_user_authentication'],
    ['low', 0.3000001, MFA, 'allowed'],
    ['low', 0.5, MFA, 'allowed'],
    ['low', 0.5000001, MFA, 'device_verification_required'],
    ['low', 0.5000001, { ...MFA, ...DEVICE }, 'allowed'],
    ['low', 0.5000001, DEVICE, 'insufficient_user_authentication'],
    ['low', 0.8, { ...MFA, ...DEVICE }, 'allowed'],
    ['low', 0.8000001, { ...MFA, ...DEVICE }, 'admin_approval_required'],
    ['low', 1, { ...MFA, ...DEVICE }, 'admin_approval_required'],
    ['high', 0.3, {}, 'allowed'],
    ['high', 0.4, MFA, 'allowed'],
    ['high', 0.4000001, MFA, 'risk_too_high'],
    // a step-up cannot cure a sensitivity cap, so the cap is reported first
    ['high', 0.45, {}, 'risk_too_high'],
    ['medium', 0.4000001, MFA, 'allowed'],
    ['medium', 0.7, { ...MFA, ...DEVICE }, 'allowed'],
    ['medium', 0.7000001, { ...MFA, ...DEVICE }, 'risk_too_high'],
    ['low', 0.7000001, { ...MFA, ...DEVICE }, 'allowed'],
    ['high', 0.9, { ...MFA, ...DEVICE }, 'admin_approval_required'],
  ])('%s resource at risk %s with %j -> %s', (resource, score, claims, reason) => {
    const out = evaluate(policy, { req: { path: `/${resource}` }, identity: user({ ...GRANTS, ...claims, risk_score: score }) });
    expect(out.reason).toBe(reason);
    expect(out.riskScore).toBe(score);
    if (reason === 'insufficient_user_authentication') expect(out.challenge).toBe(CHALLENGE_LEVEL);
    else expect(out.challenge).toBeUndefined();
  });
});

describe('risk claim values', () => {
  it.each([
    [undefined, 0],
    [0, 0],
    [1, 1],
    [0.25, 0.25],
    ['0.1', 1],
    [-0.1, 1],
    [1.5, 1],
    [null, 1],
    [true, 1],
    [[0.1], 1],
    [{ score: 0.1 }, 1],
    [Number.NaN, 1],
    [Number.POSITIVE_INFINITY, 1],
  ])('%j -> %s', (value, expected) => {
    expect(scoreFromClaim(value, 0)).toBe(expected);
  });

  it('a garbage score denies as the highest risk and reports 1', () => {
    const out = evaluate(policy, { req: { path: '/low' }, identity: user({ ...GRANTS, risk_score: 'low' }) });
    expect(out).toMatchObject({ reason: 'admin_approval_required', riskScore: 1 });
  });

  it('a missing score gets default_score', () => {
    const p = compile({ ...base, risk: { default_score: 0.35 } });
    const out = evaluate(p, { req: { path: '/low' }, identity: user(GRANTS) });
    expect(out).toMatchObject({ reason: 'insufficient_user_authentication', riskScore: 0.35 });
  });

  it('reads a configured claim name, never an inherited property', () => {
    const p = compile({ ...base, risk: { claim: 'constructor' } });
    expect(evaluate(p, { req: { path: '/low' }, identity: user(GRANTS) }).reason).toBe('allowed');
    expect(evaluate(p, { req: { path: '/low' }, identity: user({ ...GRANTS, constructor: 0.9 }) }).reason).toBe('admin_approval_required');
  });
});

describe('live risk from state', () => {
  it.each([
    [0.1, 0.9, 'admin_approval_required', 0.9],
    [0.9, 0.1, 'admin_approval_required', 0.9],
    [0.1, 0.35, 'insufficient_user_authentication', 0.35],
    [0.1, undefined, 'allowed', 0.1],
    [0.1, 7, 'admin_approval_required', 1],
    [0.1, -1, 'admin_approval_required', 1],
  ])('token %s, live %s -> %s at %s', (token, live, reason, effective) => {
    const state = stubState(live === undefined ? {} : { liveRisk: { alice: live } });
    const out = evaluate(policy, { req: { path: '/low' }, identity: user({ ...GRANTS, risk_score: token }), state });
    expect(out).toMatchObject({ reason, riskScore: effective });
  });

  it('an unavailable live score fails closed with dependency_unavailable', () => {
    const state = stubState({ liveRisk: { alice: 'unavailable' } });
    expect(evaluate(policy, { req: { path: '/low' }, identity: user(GRANTS), state }).reason).toBe('dependency_unavailable');
  });

  it('the live score lowers the sensitivity cap that filters allow-list entries', () => {
    const identity = user({ ...MFA, ...DEVICE, clearance_level: 'restricted', allowed_resources: [{ name: 'low', sensitivity: 'medium' }] });
    expect(evaluate(policy, { req: { path: '/low' }, identity }).reason).toBe('allowed');
    const state = stubState({ liveRisk: { alice: 0.75 } });
    expect(evaluate(policy, { req: { path: '/low' }, identity, state })).toMatchObject({ reason: 'resource_not_allowed', riskScore: 0.75 });
  });
});

describe('MFA evidence', () => {
  const rule = (over: Partial<Parameters<typeof mfaEvidence>[1]> = {}) => ({
    amr: new Set(['mfa', 'otp', 'hwk']),
    acr: new Set(['urn:acr:mfa']),
    maxAgeS: undefined,
    ...over,
  });
  const nowS = WEDNESDAY_NOON / 1000;
  it.each([
    [{ amr: ['pwd', 'otp'] }, rule(), 'ok'],
    [{ amr: ['pwd'] }, rule(), 'missing'],
    [{ amr: 'mfa' }, rule(), 'missing'],
    [{ amr: [['mfa']] }, rule(), 'missing'],
    [{ amr: ['MFA'] }, rule(), 'missing'],
    [{ acr: 'urn:acr:mfa' }, rule(), 'ok'],
    [{ acr: 'urn:acr:pwd' }, rule(), 'missing'],
    [{ acr: ['urn:acr:mfa'] }, rule(), 'missing'],
    [{}, rule(), 'missing'],
    [{ amr: ['mfa'], auth_time: nowS - 300 }, rule({ maxAgeS: 300 }), 'ok'],
    [{ amr: ['mfa'], auth_time: nowS - 301 }, rule({ maxAgeS: 300 }), 'stale'],
    [{ amr: ['mfa'] }, rule({ maxAgeS: 300 }), 'stale'],
    [{ amr: ['mfa'], auth_time: String(nowS) }, rule({ maxAgeS: 300 }), 'stale'],
    [{ amr: ['pwd'], auth_time: nowS }, rule({ maxAgeS: 300 }), 'missing'],
  ])('%j -> %s', (claims, r, expected) => {
    expect(mfaEvidence(claims, r, WEDNESDAY_NOON)).toBe(expected);
  });
});

describe('RFC 9470 challenge', () => {
  it.each([
    [[], undefined, 'missing', CHALLENGE_LEVEL],
    [
      ['urn:example:mfa'],
      undefined,
      'missing',
      'Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="urn:example:mfa"',
    ],
    [
      ['gold', 'silver'],
      300,
      'missing',
      'Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="gold silver", max_age="300"',
    ],
    [
      [],
      5,
      'stale',
      'Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="5"',
    ],
  ] as const)('acr %j max_age %s (%s)', (acr, maxAge, verdict, expected) => {
    expect(stepUpChallenge(acr, maxAge, verdict)).toBe(expected);
  });

  it('reaches the outcome with the configured acr values and max_age', () => {
    const p = compile({ ...base, risk: { mfa: { acr: ['urn:acr:mfa'], max_age_s: 600 } } });
    const stale = user({ ...GRANTS, risk_score: 0.31, amr: ['mfa'], auth_time: WEDNESDAY_NOON / 1000 - 601 });
    expect(evaluate(p, { req: { path: '/low' }, identity: stale }).challenge).toBe(
      'Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", acr_values="urn:acr:mfa", max_age="600"',
    );
    const none = user({ ...GRANTS, risk_score: 0.31 });
    expect(evaluate(p, { req: { path: '/low' }, identity: none }).challenge).toBe(
      'Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="urn:acr:mfa", max_age="600"',
    );
    const fresh = user({ ...GRANTS, risk_score: 0.31, acr: 'urn:acr:mfa', auth_time: WEDNESDAY_NOON / 1000 - 600 });
    expect(evaluate(p, { req: { path: '/low' }, identity: fresh }).reason).toBe('allowed');
  });
});

describe('device verification', () => {
  const p = compile({ ...base, risk: { device: { claim: 'dv', header: 'X-Device-Verified' } } });
  const at = (claims: Record<string, unknown>, headers: Record<string, string> = {}) =>
    evaluate(p, { req: { path: '/low', headers }, identity: user({ ...GRANTS, ...MFA, risk_score: 0.6, ...claims }) }).reason;
  it.each([
    [{ dv: true }, {}, 'allowed'],
    [{ dv: 'true' }, {}, 'device_verification_required'],
    [{ dv: 1 }, {}, 'device_verification_required'],
    [{ device_verified: true }, {}, 'device_verification_required'],
    [{}, { 'x-device-verified': 'true' }, 'allowed'],
    [{}, { 'x-device-verified': 'TRUE' }, 'device_verification_required'],
    [{}, { 'x-device-verified': 'true,true' }, 'device_verification_required'],
    [{}, { 'x-device-verified': '' }, 'device_verification_required'],
    [{}, {}, 'device_verification_required'],
  ])('claims %j headers %j -> %s', (claims, headers, reason) => {
    expect(at(claims, headers)).toBe(reason);
  });
});

describe('sensitivity caps', () => {
  it('uses the cap of the highest tier the score is above', () => {
    const cap = compileCaps([
      { above: 0.7, max: 'low' },
      { above: 0.4, max: 'medium' },
    ]);
    expect([0, 0.4, 0.41, 0.7, 0.71, 1].map(cap)).toEqual([2, 2, 1, 1, 0, 0]);
    expect(compileCaps([])(1)).toBe(2);
  });
});
