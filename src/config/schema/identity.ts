import { z } from 'zod';
import { claimPath, dottedClaimPath } from '../claim-path.js';
import { durationSeconds, obj, positiveInt } from './common.js';

export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'] as const;
export const algorithm = z.enum([...ASYMMETRIC_ALGORITHMS, 'HS256']);
export type Algorithm = z.infer<typeof algorithm>;

const keySource = obj({
  /** Remote JWKS document. */
  jwks_uri: z.url({ protocol: /^https?$/ }).optional(),
  /** Fetch `${issuer}/.well-known/openid-configuration` and use its jwks_uri. */
  discovery: z.boolean().optional(),
  /** Local JWKS file (a Kubernetes Secret or ConfigMap mount); re-read on refresh. */
  jwks_file: z.string().min(1).optional(),
  /** Shared secret for HS256. Only then is HS256 allowed; prefer `hs256_secret_env`. */
  hs256_secret_env: z.string().min(1).optional(),
  /** Refresh keys this often in the background (jose calls this cacheMaxAge). */
  refresh_interval_s: durationSeconds.default(300),
  /** A fetch that takes longer is abandoned; the last good keys keep serving. */
  fetch_timeout_ms: positiveInt.default(1500),
  /** On an unknown kid, refetch at most once per cooldown. */
  unknown_kid_cooldown_s: durationSeconds.default(30),
  /** How long a Check may wait for an in-flight unknown-kid refetch before denying. */
  unknown_kid_wait_ms: positiveInt.default(50),
  /**
   * How long the last good key set may serve while refreshes fail; past it the issuer's tokens
   * are denied dependency_unavailable and /readyz is 503. 0 serves it forever. A day by default:
   * an endpoint an attacker can block must not keep a removed (possibly stolen) key valid for
   * ever, and a day outlasts the outages an IdP has, so it takes nothing down that was working.
   */
  max_stale_s: durationSeconds.default(86_400),
});

/**
 * RFC 8725 §3.11 explicit typing: the `typ` header values this issuer's tokens must carry, e.g.
 * [at+jwt] for RFC 9068 access tokens. Compared as RFC 7515 §4.1.9 says: case-insensitively,
 * with an omitted "application/" prefix.
 */
const typList = z.array(z.string().min(1).regex(/^[\x21-\x7e]+$/, 'a media type without spaces')).min(1);

export const issuerSchema = obj({
  issuer: z.string().min(1),
  audiences: z.array(z.string().min(1)).min(1),
  algorithms: z.array(algorithm).min(1).default(['RS256', 'ES256', 'EdDSA', 'PS256']),
  keys: keySource,
  /** Where the token comes from. scheme '' means the whole header value is the token. */
  token_header: z.string().regex(/^[a-z0-9-]+$/, 'lower-case header name').default('authorization'),
  token_scheme: z.string().default('Bearer'),
  /** Unset: typ is not checked (tokens of IdPs that send none or "JWT" keep working). */
  typ: typList.optional(),
  /** Where this issuer puts the user id, roles and scopes; resolved once per verified token. */
  claims: obj({
    /** The user id (suspension lists, x-user-id, identity.sub); must be a non-empty string. */
    subject: claimPath.default(['sub']),
    /**
     * Claims whose arrays (or single strings) are merged into the caller's roles: one dotted path,
     * or a list of paths (each a dotted string or a list of segments). A list is always a list of paths.
     */
    roles: z
      .union([dottedClaimPath.transform((p) => [p]), z.array(claimPath)])
      .default([]),
    /** OAuth scopes: a space-separated string (RFC 9068 `scope`) or an array (Entra's `scp`). */
    scopes: claimPath.default(['scope']),
  }).prefault({}),
});

export const identitySchema = obj({
  issuers: z.array(issuerSchema).default([]),
  clock_skew_s: durationSeconds.default(60),
  /** Tokens whose exp - iat is larger are rejected. */
  max_token_lifetime_s: durationSeconds.default(86_400),
  max_token_bytes: positiveInt.default(8192),
  token_cache: obj({
    /**
     * About 1.3 KB of heap each (token string + claims). A sidecar sees the tokens of one
     * service's users within a token lifetime; raise it for a mesh-wide deployment.
     */
    max_entries: positiveInt.default(10_000),
    max_age_s: durationSeconds.default(300),
  }).prefault({}),
  /**
   * Use the bundled development key set and demo issuer. Only the embedded demo config and
   * `serve --dev` set this; a config file that sets it is refused (the keys are public), and so is
   * any non-loopback listener or real issuer alongside it.
   */
  development_keys: z.boolean().default(false),
}).prefault({});

export type IssuerConfig = z.infer<typeof issuerSchema>;
export type IdentityConfig = z.infer<typeof identitySchema>;
