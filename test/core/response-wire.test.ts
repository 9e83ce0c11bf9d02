import { describe, expect, it } from 'vitest';
import type protobuf from 'protobufjs';
import { policySchema } from '../../src/config/schema/policy.js';
import type { Decision } from '../../src/model.js';
import { REASON_CODES } from '../../src/reasons.js';
import { EnvoyResponder } from '../../src/response/envoy.js';
import { officialRoot } from '../helpers/official-protos.js';
import { referenceCheckResponse } from '../helpers/reference-codecs.js';

/**
 * The server sends EnvoyResponder.encode's hand-written protobuf bytes. Decoded with Envoy's
 * official definitions they must equal the readable reference (referenceCheckResponse) encoded by protobufjs.
 */
const official = officialRoot(['envoy/service/auth/v3/external_auth.proto']);
const CheckResponse = official.lookupType('envoy.service.auth.v3.CheckResponse');
// defaults: true, because protobufjs writes explicitly set zero values (status code 0) and our encoder, like proto3, omits them.
const toObj = (m: protobuf.Message) => CheckResponse.toObject(m, { longs: String, enums: Number, defaults: true });
const viaReference = (r: Responder, d: Decision) => toObj(CheckResponse.decode(CheckResponse.encode(CheckResponse.fromObject(referenceCheckResponse(r.headers, d) as unknown as Record<string, unknown>)).finish()));
const viaEncoder = (r: Responder, d: Decision) => toObj(CheckResponse.decode(r.envoy.encode(d)));

const defaults = policySchema.parse({}).headers;
type Responder = { headers: typeof defaults; envoy: EnvoyResponder };
const responder = (headers: typeof defaults): Responder => ({ headers, envoy: new EnvoyResponder(headers) });
const responders = [
  responder(defaults),
  responder({ ...defaults, user_id: 'x-end-user', strip_authorization: true }),
  responder({ ...defaults, expose_reason: false }),
  responder({ ...defaults, claims: { 'x-tenant': ['tenant'], 'x-email': ['email'] } }),
];

const long = 'x'.repeat(300);
const decisions: Decision[] = [
  { allow: true, reason: 'allowed', decisionId: 'a1b2c3d4e5f6-0', sub: 'alice', riskScore: 0.25, resource: 'orders' },
  { allow: true, reason: 'allowed', decisionId: 'a1b2c3d4e5f6-1', riskScore: 0 },
  { allow: true, reason: 'allowed', decisionId: 'a1b2c3d4e5f6-2', sub: 'bob', riskScore: 0, shadowed: ['outside_time_window', 'risk_too_high'] },
  { allow: true, reason: 'allowed', decisionId: 'id-ü', sub: 'zoë 😀 ' + long, riskScore: 1, resource: long },
  ...REASON_CODES.filter((r) => r !== 'allowed').map((reason, i): Decision => ({ allow: false, reason, decisionId: `d-${i}`, ...(i % 2 ? { sub: 'carol', riskScore: 0.5 } : {}) })),
  {
    allow: false,
    reason: 'insufficient_user_authentication',
    decisionId: 'step-up',
    sub: 'dave',
    riskScore: 0.35,
    challenge: `Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="${long}", max_age="300"`,
  },
  {
    allow: false,
    reason: 'scope_insufficient',
    decisionId: 'scope',
    sub: 'erin',
    challenge: 'Bearer realm="zt-authz", error="insufficient_scope", error_description="scope_insufficient", scope="orders:write"',
  },
  { allow: true, reason: 'allowed', decisionId: 'claims-1', sub: 'frank', riskScore: 0, claimHeaders: [['x-tenant', 'acme']] },
  { allow: true, reason: 'allowed', decisionId: 'claims-2', sub: 'gina', riskScore: 0, claimHeaders: [['x-email', 'g@example.com'], ['x-tenant', 'acme']] },
  { allow: true, reason: 'allowed', decisionId: 'claims-3', riskScore: 0, claimHeaders: [['x-tenant', 'spoof']] },
];

describe('EnvoyResponder.encode matches the reference CheckResponse on the official wire format', () => {
  it.each(decisions.map((d) => [d.reason, d.decisionId, d] as const))('%s (%s)', (_r, _id, d) => {
    for (const r of responders) {
      const got = viaEncoder(r, d);
      expect(got).toEqual(viaReference(r, d));
      expect(got.status.code === 0).toBe(d.allow);
    }
  });

  it('reuses its scratch buffer without leaking bytes between messages', () => {
    const r = responders[0]!;
    const big = r.envoy.encode(decisions[3]!);
    const small = r.envoy.encode(decisions[1]!);
    expect(small.length).toBeLessThan(big.length);
    expect(viaEncoder(r, decisions[1]!)).toEqual(viaReference(r, decisions[1]!));
    // The first buffer is a copy: encoding again does not change it.
    expect(toObj(CheckResponse.decode(big))).toEqual(viaReference(r, decisions[3]!));
  });
});

describe('claim headers and the insufficient_scope challenge', () => {
  const r = responders[3]!;
  const byId = (id: string) => decisions.find((d) => d.decisionId === id)!;
  type Ok = { headers: { header: { key: string; value: string } }[]; headers_to_remove: string[] };

  it('sets the claim headers a decision carries and removes the configured ones it does not', () => {
    const ok = viaEncoder(r, byId('claims-1')).ok_response as Ok;
    expect(ok.headers.map((h) => [h.header.key, h.header.value])).toContainEqual(['x-tenant', 'acme']);
    expect(ok.headers.map((h) => h.header.key)).not.toContain('x-email');
    expect(ok.headers_to_remove).toContain('x-email');
    expect(ok.headers_to_remove).not.toContain('x-tenant');
  });

  it('without a user every claim header is removed, whatever the decision carries', () => {
    const ok = viaEncoder(r, byId('claims-3')).ok_response as Ok;
    expect(ok.headers.map((h) => h.header.key)).not.toContain('x-tenant');
    expect(ok.headers_to_remove).toEqual(expect.arrayContaining(['x-tenant', 'x-email', 'x-user-id']));
  });

  it('scope_insufficient is a 403 with the RFC 6750 insufficient_scope challenge', () => {
    const denied = viaEncoder(r, byId('scope')).denied_response as { status: { code: number }; headers: { header: { key: string; value: string } }[] };
    expect(denied.status.code).toBe(403);
    expect(denied.headers.find((h) => h.header.key === 'www-authenticate')?.header.value).toBe(
      'Bearer realm="zt-authz", error="insufficient_scope", error_description="scope_insufficient", scope="orders:write"',
    );
  });
});
