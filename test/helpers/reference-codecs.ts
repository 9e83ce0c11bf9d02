import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { PolicyConfig } from '../../src/config/schema/policy.js';
import type { Decision } from '../../src/model.js';
import { GrpcCode, REASONS } from '../../src/reasons.js';
import { REASON_HEADER, SHADOW_HEADER, bearerChallenge, denyBody } from '../../src/response/deny-body.js';
import type { WireCheckResponse } from '../../src/response/envoy.js';
import { UNDECODABLE_REQUEST, type WireCheckRequest } from '../../src/wire/check-request.js';
import { loadProtos, PROTO_DIR, tuneCheckMethod } from '../../src/wire/protos.js';

/**
 * The readable codecs the server's hand-written ones are checked against (and the bench's no-op
 * baseline serves): protobufjs decoding every CheckRequest field, and the CheckResponse as an
 * object that protobufjs encodes. zt-authz itself never runs them.
 */

let CheckRequest: protobuf.Type | undefined;

/** protobufjs (proto-loader's own engine) decoding CheckRequest without the toObject copy proto-loader adds. */
export function protobufjsDecodeCheckRequest(bytes: Buffer): WireCheckRequest {
  if (CheckRequest === undefined) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (existsSync(join(PROTO_DIR, target)) ? join(PROTO_DIR, target) : target);
    root.loadSync('envoy/service/auth/v3/external_auth.proto', { keepCase: true });
    CheckRequest = root.lookupType('envoy.service.auth.v3.CheckRequest');
  }
  return CheckRequest.decode(bytes) as unknown as WireCheckRequest;
}

/** The Authorization service with protobufjs decoding Check (undecodable bytes become UNDECODABLE_REQUEST). */
export function referenceAuthorizationService(): grpc.ServiceDefinition {
  return tuneCheckMethod(loadProtos().authorization, (bytes) => {
    try {
      return protobufjsDecodeCheckRequest(bytes);
    } catch {
      return UNDECODABLE_REQUEST;
    }
  });
}

/** HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD. */
const OVERWRITE = 2;
const opt = (key: string, value: string) => ({ header: { key, value }, append_action: OVERWRITE });

/** The CheckResponse EnvoyResponder.encode must produce, as an object for protobufjs to encode. */
export function referenceCheckResponse(headers: PolicyConfig['headers'], d: Decision): WireCheckResponse {
  const fields: WireCheckResponse['dynamic_metadata']['fields'] = { decision_id: { stringValue: d.decisionId }, reason: { stringValue: d.reason } };
  if (d.sub) fields.sub = { stringValue: d.sub };
  if (d.riskScore !== undefined) fields.risk_score = { numberValue: d.riskScore };
  if (d.resource) fields.resource = { stringValue: d.resource };
  const metadata = { fields };
  const strip = headers.strip_authorization ? ['authorization'] : [];
  if (d.allow) {
    const upstream = [opt(headers.decision_id, d.decisionId), opt(headers.risk_score, String(d.riskScore ?? 0))];
    if (d.sub) upstream.push(opt(headers.user_id, d.sub));
    // Claim headers: set when the token has a usable value, otherwise removed (so a client's copy never passes).
    const remove: string[] = [];
    const claimNames = Object.keys(headers.claims ?? {});
    if (d.sub) {
      for (const name of claimNames) {
        const pair = d.claimHeaders?.find((p) => p[0] === name);
        if (pair === undefined) remove.push(name);
        else upstream.push(opt(name, pair[1]));
      }
    } else remove.push(...claimNames);
    const ok: NonNullable<WireCheckResponse['ok_response']> = {
      headers: upstream,
      // Headers we set are overwritten; the ones we do not set must still not arrive from the client.
      headers_to_remove: d.sub ? [...remove, ...strip] : [headers.user_id, ...remove, ...strip],
    };
    if (d.shadowed && d.shadowed.length > 0) ok.response_headers_to_add = [opt(SHADOW_HEADER, d.shadowed.join(','))];
    return { status: { code: GrpcCode.OK, message: '' }, ok_response: ok, dynamic_metadata: metadata };
  }
  const expose = headers.expose_reason !== false;
  const denyHeaders = [opt('content-type', 'application/json')];
  if (expose) denyHeaders.push(opt(REASON_HEADER, d.reason));
  denyHeaders.push(opt(headers.decision_id, d.decisionId));
  const challenge = bearerChallenge(d, expose);
  if (challenge) denyHeaders.push(opt('www-authenticate', challenge));
  const spec = REASONS[d.reason];
  return {
    status: { code: spec.grpc, message: d.reason },
    denied_response: { status: { code: spec.http }, headers: denyHeaders, body: denyBody(d.reason, d.decisionId, expose) },
    dynamic_metadata: metadata,
  };
}
