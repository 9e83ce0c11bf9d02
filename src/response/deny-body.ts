import { REASONS, type Reason } from '../reasons.js';
import type { Decision } from '../model.js';

export const REASON_HEADER = 'x-zt-authz-reason';
export const SHADOW_HEADER = 'x-zt-authz-shadow-deny';
const REALM = 'zt-authz';

/**
 * RFC 6750 §3: no error attribute when the request carried no credentials; otherwise the error
 * code, with our reason as the description so a client can tell expiry from forgery.
 * RFC 9470 step-up challenges come from the policy (they carry acr_values / max_age).
 */
export function bearerChallenge(d: Decision): string | undefined {
  const spec = REASONS[d.reason];
  // A 403 carries a challenge only for insufficient_scope (RFC 6750 §3.1), built by the policy.
  if (spec.kind !== 'identity') return 'bearerError' in spec ? d.challenge : undefined;
  if (d.challenge) return d.challenge;
  if (d.reason === 'token_missing') return `Bearer realm="${REALM}"`;
  const error = 'bearerError' in spec ? spec.bearerError : 'invalid_token';
  return `Bearer realm="${REALM}", error="${error}", error_description="${d.reason}"`;
}

/** The JSON deny body. Built by concatenation: reason codes and ids never need escaping. */
export function denyBody(reason: Reason, decisionId: string): string {
  return '{"error":"' + reason + '","decision_id":"' + decisionId + '"}';
}
