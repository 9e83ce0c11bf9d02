/**
 * Every reason a decision can carry. The string codes are a public contract: they appear in
 * deny bodies, the `x-zt-authz-reason` header, decision logs, Envoy dynamic metadata and as the
 * `reason` label of metrics. Add codes; never rename or reuse one.
 */

/** gRPC status codes (google.rpc.Code) the sidecar answers with. */
export const GrpcCode = {
  OK: 0,
  PERMISSION_DENIED: 7,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

/**
 * `identity`  → 401 + WWW-Authenticate, gRPC UNAUTHENTICATED
 * `authz`     → 403, gRPC PERMISSION_DENIED
 * `failure`   → 503, gRPC UNAVAILABLE: Envoy treats it as an authorization *failure*, so
 *               `failure_mode_allow` and `status_on_error` decide (both fail closed by default).
 */
export type ReasonKind = 'allow' | 'identity' | 'authz' | 'failure';

export interface ReasonSpec {
  readonly kind: ReasonKind;
  readonly grpc: GrpcCode;
  readonly http: number;
  /** RFC 6750 error code for the WWW-Authenticate challenge of 401s. */
  readonly bearerError?: 'invalid_token' | 'invalid_request' | 'insufficient_user_authentication' | 'insufficient_scope';
  readonly description: string;
}

const identity = (description: string, bearerError?: ReasonSpec['bearerError']): ReasonSpec =>
  bearerError === undefined
    ? { kind: 'identity', grpc: GrpcCode.UNAUTHENTICATED, http: 401, description }
    : { kind: 'identity', grpc: GrpcCode.UNAUTHENTICATED, http: 401, bearerError, description };
const authz = (description: string, http = 403): ReasonSpec => ({
  kind: 'authz',
  grpc: GrpcCode.PERMISSION_DENIED,
  http,
  description,
});
const failure = (description: string): ReasonSpec => ({
  kind: 'failure',
  grpc: GrpcCode.UNAVAILABLE,
  http: 503,
  description,
});

export const REASONS = {
  allowed: { kind: 'allow', grpc: GrpcCode.OK, http: 200, description: 'every check passed' },

  token_missing: identity('no bearer token in the configured header'),
  token_malformed: identity('token is not a well-formed compact JWS, is too large, or the header is ambiguous', 'invalid_request'),
  token_invalid: identity('signature, algorithm, key or claim structure rejected', 'invalid_token'),
  token_expired: identity('exp is in the past (beyond the clock skew)', 'invalid_token'),
  token_not_yet_valid: identity('nbf or iat is in the future (beyond the clock skew)', 'invalid_token'),
  token_lifetime_exceeded: identity('exp - iat exceeds the maximum token lifetime', 'invalid_token'),
  issuer_unknown: identity('iss names no configured issuer', 'invalid_token'),
  audience_mismatch: identity('aud names none of the issuer\'s audiences', 'invalid_token'),
  insufficient_user_authentication: identity('step-up authentication (MFA) required, RFC 9470', 'insufficient_user_authentication'),

  user_suspended: authz('the subject is suspended (suspended_user:<id>)'),
  ip_blocked: authz('the client IP is blocked (blocked_ip:<ip> or blocked_cidr:<cidr>)'),
  device_verification_required: authz('risk tier requires a verified device'),
  admin_approval_required: authz('risk score is above the admin-approval tier'),
  risk_too_high: authz('resource sensitivity is above what the current risk tier allows'),
  outside_time_window: authz('request time is outside the allowed hours or days'),
  route_not_found: authz('no route maps the request to a resource'),
  resource_not_allowed: authz('allowed_resources does not grant the resource (or method)'),
  clearance_insufficient: authz('clearance_level is below the resource classification'),
  service_pair_not_allowed: authz('the calling workload may not call this service'),
  workload_identity_required: authz('the resource requires a workload (mTLS) identity'),
  request_invalid: authz('the CheckRequest is malformed or missing required attributes', 400),
  internal_error: authz('an unexpected error while evaluating; denied', 500),

  dependency_unavailable: failure('a dependency (JWKS, Redis) is unavailable or its data too stale'),
  deadline_exceeded: failure('the request deadline passed before a decision was reached'),

  role_missing: authz('the caller lacks a role the resource or route requires (require.roles_any / roles_all)'),
  // 403 with an RFC 6750 §3.1 insufficient_scope challenge naming the scopes needed.
  scope_insufficient: { ...authz('the token lacks a scope the resource or route requires (require.scopes_any / scopes_all)'), bearerError: 'insufficient_scope' },
  condition_failed: authz('a `when` condition of the resource or route evaluated to false'),
  condition_error: authz('a `when` condition could not be evaluated (missing claim or header, wrong type, cost limit); denied'),
} as const satisfies Record<string, ReasonSpec>;

export type Reason = keyof typeof REASONS;
export type DenyReason = Exclude<Reason, 'allowed'>;

export const REASON_CODES = Object.keys(REASONS) as Reason[];

export function isReason(value: string): value is Reason {
  return Object.hasOwn(REASONS, value);
}

/** Position of each code in REASON_CODES, for counters kept in flat arrays. */
export const REASON_INDEX = Object.fromEntries(REASON_CODES.map((r, i) => [r, i])) as Record<Reason, number>;
