import { GrpcCode, REASONS, type Reason } from '../reasons.js';
import type { Decision } from '../decision/types.js';
import type { PolicyConfig } from '../config/schema/policy.js';
import { REASON_HEADER, SHADOW_HEADER, bearerChallenge, denyBody } from './deny-body.js';

/** HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD: a spoofed inbound copy is replaced, never appended to. */
const OVERWRITE = 2;

interface HeaderOption {
  header: { key: string; value: string };
  append_action: number;
}

const opt = (key: string, value: string): HeaderOption => ({ header: { key, value }, append_action: OVERWRITE });

// protobufjs ships google.protobuf.Struct with camelCase field names, whatever keepCase says.
type StructValue = { stringValue: string } | { numberValue: number };

/** The CheckResponse shape @grpc/proto-loader serialises (keepCase). */
export interface WireCheckResponse {
  status: { code: number; message: string };
  ok_response?: {
    headers: HeaderOption[];
    headers_to_remove: string[];
    response_headers_to_add?: HeaderOption[];
  };
  denied_response?: { status: { code: number }; headers: HeaderOption[]; body: string };
  dynamic_metadata: { fields: Record<string, StructValue> };
}

/**
 * Turns decisions into CheckResponses. Everything that does not depend on the request
 * (status objects, header names, remove lists) is built once here, per config.
 */
export class EnvoyResponder {
  private readonly okStatus = { code: GrpcCode.OK, message: '' };
  private readonly denyStatus = new Map<Reason, { code: number; message: string }>();
  private readonly denyHttpStatus = new Map<Reason, { code: number }>();
  private readonly removeWithUser: string[];
  private readonly removeWithoutUser: string[];

  constructor(private readonly headers: PolicyConfig['headers']) {
    for (const [reason, spec] of Object.entries(REASONS) as [Reason, (typeof REASONS)[Reason]][]) {
      this.denyStatus.set(reason, { code: spec.grpc, message: reason });
      this.denyHttpStatus.set(reason, { code: spec.http });
    }
    const strip = headers.strip_authorization ? ['authorization'] : [];
    // Headers we set are overwritten; the ones we do not set must still not arrive from the client.
    this.removeWithUser = [...strip];
    this.removeWithoutUser = [headers.user_id, ...strip];
  }

  toCheckResponse(d: Decision): WireCheckResponse {
    const metadata = this.metadata(d);
    if (d.allow) {
      const upstream: HeaderOption[] = [
        opt(this.headers.decision_id, d.decisionId),
        opt(this.headers.risk_score, String(d.riskScore ?? 0)),
      ];
      if (d.sub) upstream.push(opt(this.headers.user_id, d.sub));
      const ok: NonNullable<WireCheckResponse['ok_response']> = {
        headers: upstream,
        headers_to_remove: d.sub ? this.removeWithUser : this.removeWithoutUser,
      };
      if (d.shadowed && d.shadowed.length > 0) ok.response_headers_to_add = [opt(SHADOW_HEADER, d.shadowed.join(','))];
      return { status: this.okStatus, ok_response: ok, dynamic_metadata: metadata };
    }
    const headers = [
      opt('content-type', 'application/json'),
      opt(REASON_HEADER, d.reason),
      opt(this.headers.decision_id, d.decisionId),
    ];
    const challenge = bearerChallenge(d);
    if (challenge) headers.push(opt('www-authenticate', challenge));
    return {
      status: this.denyStatus.get(d.reason)!,
      denied_response: { status: this.denyHttpStatus.get(d.reason)!, headers, body: denyBody(d.reason, d.decisionId) },
      dynamic_metadata: metadata,
    };
  }

  private metadata(d: Decision): WireCheckResponse['dynamic_metadata'] {
    const fields: Record<string, StructValue> = {
      decision_id: { stringValue: d.decisionId },
      reason: { stringValue: d.reason },
    };
    if (d.sub) fields.sub = { stringValue: d.sub };
    if (d.riskScore !== undefined) fields.risk_score = { numberValue: d.riskScore };
    if (d.resource) fields.resource = { stringValue: d.resource };
    return { fields };
  }
}
