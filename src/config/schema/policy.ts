import { z } from 'zod';
import { claimPath, type ClaimPath } from '../claim-path.js';
import { SHADOWABLE_CHECKS } from './checks.js';
import { classification, obj, sensitivity, weekday } from './common.js';

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM (24 h)');

/** Rejected here rather than at compile time so a hot reload with a typo keeps the old policy. */
function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const timeWindowSchema = obj({
  timezone: z.string().default('UTC').refine(isTimeZone, { message: 'unknown IANA time zone' }),
  /**
   * Inclusive on both ends, by minute: 08:00–18:59 allows 18:59:59 and denies 19:00:00.
   * end < start wraps past midnight; the part after midnight belongs to the day the window opened.
   */
  start: hhmm.default('08:00'),
  end: hhmm.default('18:59'),
  days: z.array(weekday).min(1).default(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']),
});

/** The shadowable checks, in check order (derived from POLICY_CHECKS). */
export const CHECK_NAMES = SHADOWABLE_CHECKS;
export const checkName = z.enum(SHADOWABLE_CHECKS);

/** RFC 6749 §3.3 scope-token: it is quoted into the insufficient_scope challenge, so no space, quote or backslash. */
const scopeToken = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'a scope is an RFC 6749 scope-token: no spaces, quotes or backslashes');
const roleName = z.string().min(1);

/** What the caller's roles and scopes (identity.issuers[].claims) must hold. A route's adds to its resource's. */
export const requireSchema = obj({
  roles_any: z.array(roleName).min(1).optional(),
  roles_all: z.array(roleName).min(1).optional(),
  scopes_any: z.array(scopeToken).min(1).optional(),
  scopes_all: z.array(scopeToken).min(1).optional(),
});

/** One CEL expression or a list that must all be true. Compiled and type-checked when the policy is. */
export const whenSchema = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((w) => (typeof w === 'string' ? [w] : w));

export const resourceSchema = obj({
  sensitivity: sensitivity.default('low'),
  classification: classification.default('public'),
  time_window: timeWindowSchema.optional(),
  /** Who may call: an end user with a JWT, a workload with an mTLS principal, or either. */
  identity: z.enum(['user', 'workload', 'any']).default('user'),
  /** Destination service name for service-to-service pairs (defaults to the resource name). */
  service: z.string().min(1).optional(),
  require: requireSchema.optional(),
  when: whenSchema.optional(),
});

/**
 * A config path that is not in the canonical form the normaliser produces could never match a
 * request, which is a silent policy hole: reject it instead.
 */
const canonicalConfigPath = z
  .string()
  .startsWith('/')
  .refine((p) => !/\/\/|\/\.\.?(\/|$)|[\\?#%]/.test(p), {
    message: 'must be a normalised path: no //, /./, /../, backslash, ?, # or %',
  });

const routePattern = canonicalConfigPath.refine(
  (p) => {
    const segs = p.split('/').slice(1);
    return segs.every((s, i) => (s.includes('*') ? s === '*' || (s === '**' && i === segs.length - 1) : true));
  },
  { message: '`*` must be a whole segment and `**` only the last segment' },
);

export const routeSchema = obj({
  /** Exactly one of prefix / path / pattern. pattern: `*` matches one segment, `**` the rest. */
  prefix: canonicalConfigPath.optional(),
  path: canonicalConfigPath.optional(),
  pattern: routePattern.optional(),
  methods: z.array(z.string().regex(/^[A-Z]+$/)).min(1).optional(),
  /** Exact host or `*.suffix` (any non-empty subdomain, at any depth); compared lower-case, without port. */
  host: z
    .string()
    .regex(/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, 'expected host or *.suffix, without port')
    .optional(),
  resource: z.string().min(1),
  /** Added to the resource's `require` and `when` for requests this route matches. */
  require: requireSchema.optional(),
  when: whenSchema.optional(),
}).refine((r) => [r.prefix, r.path, r.pattern].filter((v) => v !== undefined).length === 1, {
  message: 'a route needs exactly one of prefix, path, pattern',
});

const SENSITIVITY_RANK = { low: 0, medium: 1, high: 2 } as const;

/** `spiffe://td/seg/...` with `*` only as a whole segment, or a bare Kubernetes service-account name. */
const servicePairFrom = z
  .string()
  .min(1)
  .refine(
    (s) =>
      s.startsWith('spiffe://')
        ? s
            .slice('spiffe://'.length)
            .split('/')
            .every((seg) => seg.length > 0 && (seg === '*' || !seg.includes('*')))
        : /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(s),
    { message: 'expected spiffe://TD/ns/NS/sa/SA (`*` as a whole segment) or a bare service-account name' },
  );

export const policySchema = obj({
  /** Global shadow mode: every check that would deny is logged and counted, and the request allowed. */
  shadow: z.boolean().default(false),
  shadow_checks: z.array(checkName).default([]),
  risk: obj({
    claim: claimPath.default(['risk_score']),
    default_score: z.number().min(0).max(1).default(0),
    mfa_above: z.number().min(0).max(1).default(0.3),
    device_above: z.number().min(0).max(1).default(0.5),
    deny_above: z.number().min(0).max(1).default(0.8),
    /** Highest sensitivity allowed once the score is above `above`. */
    sensitivity_caps: z
      .array(obj({ above: z.number().min(0).max(1), max: sensitivity }))
      .default([
        { above: 0.4, max: 'medium' },
        { above: 0.7, max: 'low' },
      ]),
    mfa: obj({
      amr: z.array(z.string()).default(['mfa', 'otp', 'hwk']),
      acr: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'acr values are sent in acr_values: no spaces, quotes or backslashes')).default([]),
      /** Step-up must be this recent (auth_time); emitted as RFC 9470 max_age. */
      max_age_s: z.number().int().positive().optional(),
    }).prefault({}),
    device: obj({
      claim: claimPath.default(['device_verified']),
      /** Header set by a trusted device-posture proxy; its value must be "true". */
      header: z.string().optional(),
    }).prefault({}),
  })
    .refine(
      (r) =>
        r.sensitivity_caps.every((a) =>
          r.sensitivity_caps.every((b) => !(b.above > a.above) || SENSITIVITY_RANK[b.max] <= SENSITIVITY_RANK[a.max]),
        ),
      { message: 'a higher `above` must not allow a higher sensitivity', path: ['sensitivity_caps'] },
    )
    .prefault({}),
  time_window: timeWindowSchema.optional(),
  resources: z.record(z.string().min(1), resourceSchema).default({}),
  routes: z.array(routeSchema).default([]),
  /** Resource used when no route matches. Unset: route_not_found. */
  default_resource: z.string().optional(),
  clearance_claim: claimPath.default(['clearance_level']),
  /** null turns the allow-list check off (tokens that carry no such claim; policies built on roles and scopes). */
  allowed_resources_claim: claimPath.nullable().default(['allowed_resources']),
  service_pairs: z
    .array(
      obj({
        /** SPIFFE ID, `spiffe://td/ns/NS/sa/SA`, with `*` wildcards, or a bare service-account name. */
        from: servicePairFrom,
        /** A resource's service (its `service`, else its name), or `*` for every service. */
        to: z.string().min(1),
      }),
    )
    .default([]),
  headers: obj({
    user_id: z.string().default('x-user-id'),
    risk_score: z.string().default('x-risk-score'),
    decision_id: z.string().default('x-auth-decision-id'),
    strip_authorization: z.boolean().default(false),
    /**
     * false: denies tell the client only their class (body `{"error":"forbidden",…}`, no
     * x-zt-authz-reason, no error_description); the reason stays in dynamic metadata, logs and metrics.
     */
    expose_reason: z.boolean().default(true),
    /**
     * Upstream header → claim path, set on an allow (OVERWRITE_IF_EXISTS_OR_ADD) like Envoy
     * jwt_authn's claim_to_headers. A client's copy is always removed; values that are not a
     * string, number or boolean, or hold CR/LF, or are longer than 4096 bytes are not sent.
     */
    claims: z.record(z.string().regex(/^[a-z0-9-]+$/, 'lower-case header name'), claimPath).default({}),
  })
    .superRefine((h, ctx) => {
      const reserved = new Set([h.user_id, h.risk_score, h.decision_id, 'authorization', 'host', 'x-zt-authz-reason']);
      for (const name of Object.keys(h.claims)) {
        if (reserved.has(name)) ctx.addIssue({ code: 'custom', path: ['claims', name], message: `header ${name} is set by zt-authz itself or must not be overwritten` });
      }
    })
    .prefault({}),
})
  .superRefine((p, ctx) => {
    const known = (name: string) => Object.hasOwn(p.resources, name);
    p.routes.forEach((r, i) => {
      if (!known(r.resource)) {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'resource'], message: `unknown resource "${r.resource}"` });
      }
    });
    if (p.default_resource !== undefined && !known(p.default_resource)) {
      ctx.addIssue({ code: 'custom', path: ['default_resource'], message: `unknown resource "${p.default_resource}"` });
    }
  })
  .prefault({});

export type PolicyConfig = z.infer<typeof policySchema>;
export type ResourceConfig = z.infer<typeof resourceSchema>;
export type TimeWindowConfig = z.infer<typeof timeWindowSchema>;
export type RequireConfig = z.infer<typeof requireSchema>;
export type RouteConfig = z.infer<typeof routeSchema>;
export type { ClaimPath };
