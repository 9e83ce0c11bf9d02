/**
 * The policy checks in the order they run: the one list the schema's `shadow_checks` names, the
 * compiled check table (src/policy/checks.ts binds a `run` to each entry), explain and the README
 * table come from. It lives here, below the policy folder, because the schema must know the names.
 * Cheapest and most decisive first; CEL conditions, the costliest, last.
 */
export const POLICY_CHECKS = [
  {
    check: 'route',
    reasons: ['route_not_found', 'token_missing'],
    appliesTo: 'every request',
    shadowable: false,
    summary: 'context_extensions.resource, else the first matching route, else default_resource',
  },
  {
    check: 'identity_requirement',
    reasons: ['token_missing', 'workload_identity_required'],
    appliesTo: 'every request',
    shadowable: false,
    summary: "the resource's `identity`: user needs a token, workload an mTLS principal, any one of them",
  },
  {
    check: 'state',
    reasons: ['user_suspended', 'dependency_unavailable'],
    appliesTo: 'requests with a user token',
    shadowable: true,
    summary: 'suspended users; a live risk score raises the effective risk to max(token, live)',
  },
  {
    check: 'risk',
    reasons: ['admin_approval_required', 'risk_too_high', 'insufficient_user_authentication', 'device_verification_required'],
    appliesTo: 'requests with a user token',
    shadowable: true,
    summary: 'deny tier, sensitivity cap, MFA step-up (RFC 9470), device verification — in that order',
  },
  {
    check: 'time_window',
    reasons: ['outside_time_window'],
    appliesTo: 'every request',
    shadowable: true,
    summary: "the resource's window, else the global one, in its IANA time zone",
  },
  {
    check: 'resource',
    reasons: ['resource_not_allowed'],
    appliesTo: 'requests with a user token (off with allowed_resources_claim: null)',
    shadowable: true,
    summary: 'the allowed_resources claim grants the resource (exact, `prefix/*` or `*`)',
  },
  {
    check: 'clearance',
    reasons: ['clearance_insufficient'],
    appliesTo: 'requests with a user token',
    shadowable: true,
    summary: 'clearance_level >= the resource classification',
  },
  {
    check: 'service_pair',
    reasons: ['service_pair_not_allowed'],
    appliesTo: 'requests with a workload principal',
    shadowable: true,
    summary: "a service pair allows the caller's SPIFFE ID to call the resource's service",
  },
  {
    check: 'require',
    reasons: ['role_missing', 'scope_insufficient'],
    appliesTo: 'resources and routes with `require`',
    shadowable: true,
    summary: 'roles_any, roles_all, scopes_any, scopes_all of the resource and the matched route',
  },
  {
    check: 'condition',
    reasons: ['condition_failed', 'condition_error'],
    appliesTo: 'resources and routes with `when`',
    shadowable: true,
    summary: 'every CEL `when` expression of the resource, then of the route, is true',
  },
] as const satisfies readonly {
  check: string;
  reasons: readonly string[];
  appliesTo: string;
  shadowable: boolean;
  summary: string;
}[];

export type PolicyCheckName = (typeof POLICY_CHECKS)[number]['check'];
type Shadowable = Extract<(typeof POLICY_CHECKS)[number], { shadowable: true }>['check'];

export const SHADOWABLE_CHECKS = POLICY_CHECKS.filter((c) => c.shadowable).map((c) => c.check) as Shadowable[];
export type ShadowableCheck = Shadowable;
