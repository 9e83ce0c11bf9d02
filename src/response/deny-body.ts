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
export function bearerChallenge(d: Decision, exposeReason = true): string | undefined {
  const spec = REASONS[d.reason];
  // A 403 carries a challenge only for insufficient_scope (RFC 6750 §3.1), built by the policy.
  if (spec.kind !== 'identity') return 'bearerError' in spec ? d.challenge : undefined;
  // A step-up challenge is what the client must act on (RFC 9470), so it is sent even when reasons are kept back.
  if (d.challenge) return d.challenge;
  if (d.reason === 'token_missing') return `Bearer realm="${REALM}"`;
  const error = 'bearerError' in spec ? spec.bearerError : 'invalid_token';
  if (!exposeReason) return `Bearer realm="${REALM}", error="${error}"`;
  return `Bearer realm="${REALM}", error="${error}", error_description="${d.reason}"`;
}

/** What a client sees instead of the reason with `policy.headers.expose_reason: false`: the class of the status. */
const PUBLIC_ERROR: Readonly<Record<number, string>> = { 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 500: 'internal_error', 503: 'unavailable' };

export function publicError(reason: Reason): string {
  return PUBLIC_ERROR[REASONS[reason].http] ?? 'denied';
}

/** The JSON deny body. Built by concatenation: reason codes and ids never need escaping. */
export function denyBody(reason: Reason, decisionId: string, exposeReason = true): string {
  return '{"error":"' + (exposeReason ? reason : publicError(reason)) + '","decision_id":"' + decisionId + '"}';
}
