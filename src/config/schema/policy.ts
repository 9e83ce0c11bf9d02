import { z } from 'zod';
import { classification, obj, sensitivity, weekday } from './common.js';

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM (24 h)');

export const timeWindowSchema = obj({
  timezone: z.string().default('UTC'),
  /** Inclusive on both ends, by minute: 08:00–18:59 allows 18:59:59 and denies 19:00:00. */
  start: hhmm.default('08:00'),
  end: hhmm.default('18:59'),
  days: z.array(weekday).min(1).default(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']),
});

export const CHECK_NAMES = ['state', 'risk', 'time_window', 'resource', 'clearance', 'service_pair'] as const;
export const checkName = z.enum(CHECK_NAMES);

export const resourceSchema = obj({
  sensitivity: sensitivity.default('low'),
  classification: classification.default('public'),
  time_window: timeWindowSchema.optional(),
  /** Who may call: an end user with a JWT, a workload with an mTLS principal, or either. */
  identity: z.enum(['user', 'workload', 'any']).default('user'),
  /** Destination service name for service-to-service pairs (defaults to the resource name). */
  service: z.string().optional(),
});

export const routeSchema = obj({
  /** Exactly one of prefix / path / pattern. pattern: `*` matches one segment, `**` the rest. */
  prefix: z.string().startsWith('/').optional(),
  path: z.string().startsWith('/').optional(),
  pattern: z.string().startsWith('/').optional(),
  methods: z.array(z.string().regex(/^[A-Z]+$/)).optional(),
  host: z.string().optional(),
  resource: z.string().min(1),
});

export const policySchema = obj({
  /** Global shadow mode: every check that would deny is logged and counted, and the request allowed. */
  shadow: z.boolean().default(false),
  shadow_checks: z.array(checkName).default([]),
  risk: obj({
    claim: z.string().default('risk_score'),
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
      acr: z.array(z.string()).default([]),
      /** Step-up must be this recent (auth_time); emitted as RFC 9470 max_age. */
      max_age_s: z.number().int().positive().optional(),
    }).prefault({}),
    device: obj({
      claim: z.string().default('device_verified'),
      /** Header set by a trusted device-posture proxy; its value must be "true". */
      header: z.string().optional(),
    }).prefault({}),
  }).prefault({}),
  time_window: timeWindowSchema.optional(),
  resources: z.record(z.string().min(1), resourceSchema).default({}),
  routes: z.array(routeSchema).default([]),
  /** Resource used when no route matches. Unset: route_not_found. */
  default_resource: z.string().optional(),
  clearance_claim: z.string().default('clearance_level'),
  allowed_resources_claim: z.string().default('allowed_resources'),
  service_pairs: z
    .array(
      obj({
        /** SPIFFE ID, `spiffe://td/ns/NS/sa/SA`, with `*` wildcards, or a bare service-account name. */
        from: z.string().min(1),
        to: z.string().min(1),
      }),
    )
    .default([]),
  headers: obj({
    user_id: z.string().default('x-user-id'),
    risk_score: z.string().default('x-risk-score'),
    decision_id: z.string().default('x-auth-decision-id'),
    strip_authorization: z.boolean().default(false),
  }).prefault({}),
}).prefault({});

export type PolicyConfig = z.infer<typeof policySchema>;
export type ResourceConfig = z.infer<typeof resourceSchema>;
export type TimeWindowConfig = z.infer<typeof timeWindowSchema>;
