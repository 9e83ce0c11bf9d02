import type { CheckName } from './ranks.js';

/**
 * The order `evaluate` runs the checks in: cheapest and most decisive first. The engine has already
 * normalised the request, refused blocked IPs and verified the token (a bad token never gets here).
 *
 * | # | check                  | denies with                                                                                      | applies to            | shadowable |
 * |---|------------------------|--------------------------------------------------------------------------------------------------|-----------------------|------------|
 * | 0 | `route`                | `route_not_found` (`token_missing` to a caller with neither token nor principal)                 | every request         | no         |
 * | 1 | `identity_requirement` | `token_missing`, `workload_identity_required`                                                    | every request         | no         |
 * | 2 | `state`                | `user_suspended`, `dependency_unavailable`                                                       | requests with a user  | yes        |
 * | 3 | `risk`                 | `admin_approval_required`, `risk_too_high`, `insufficient_user_authentication`, `device_verification_required` | requests with a user | yes |
 * | 4 | `time_window`          | `outside_time_window`                                                                            | every request         | yes        |
 * | 5 | `resource`             | `resource_not_allowed`                                                                           | requests with a user  | yes        |
 * | 6 | `clearance`            | `clearance_insufficient`                                                                         | requests with a user  | yes        |
 * | 7 | `service_pair`         | `service_pair_not_allowed`                                                                       | requests with a principal | yes    |
 *
 * Route and identity requirement are never shadowed: without a resource or a caller there is
 * nothing for the later checks to evaluate.
 */
export const CHECK_ORDER = [
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
    appliesTo: 'requests with a user token',
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
] as const satisfies readonly {
  check: CheckName | 'route' | 'identity_requirement';
  reasons: readonly string[];
  appliesTo: string;
  shadowable: boolean;
  summary: string;
}[];

export type PolicyCheckName = (typeof CHECK_ORDER)[number]['check'];
