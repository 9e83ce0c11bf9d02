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
