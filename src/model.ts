import type { Reason } from './reasons.js';

export type ClientIpSource = 'forwarded' | 'peer' | 'proxy';

/** A CheckRequest (or HTTP auth subrequest) reduced to what the checks read. Built once per call. */
export interface NormalizedRequest {
  /** Upper-case HTTP method. */
  readonly method: string;
  /** Percent-decoded once, with `//`, `/./` and `/../` collapsed; never contains the query. */
  readonly path: string;
  /** The request target exactly as the client sent it (path + query). */
  readonly rawPath: string;
  readonly query: string;
  /** Lower-case, without port. */
  readonly host: string;
  readonly scheme: string;
  /** Lower-case header names. Envoy joins repeated headers with ",". */
  readonly headers: Readonly<Record<string, string>>;
  /** Normalised client IP ('' when unknown); IPv4-mapped IPv6 is reduced to IPv4. */
  readonly clientIp: string;
  /**
   * Where clientIp came from, so auto-remediation never blames a relay for the clients behind it:
   * 'forwarded' - named by a trusted forwarder (x-forwarded-for under trusted_xff_hops, or a trusted
   *   proxy's X-Real-IP / X-Forwarded-For in HTTP mode): the originating client;
   * 'peer' - the direct peer, and nothing in the config says it is a proxy;
   * 'proxy' - the peer is a configured proxy that forwarded no client address: it relays for others.
   */
  readonly clientIpSource: ClientIpSource;
  /** Workload identity of the caller from mTLS (SPIFFE ID), '' when none. */
  readonly principal: string;
  /** Envoy per-route context_extensions. */
  readonly contextExtensions: Readonly<Record<string, string>>;
  readonly requestId: string;
}

/** A verified end-user identity: the claims of a token whose signature and registered claims passed. */
export interface Identity {
  readonly issuer: string;
  readonly sub: string;
  readonly claims: Readonly<Record<string, unknown>>;
  /** The issuer's `claims.roles` paths merged, resolved once when the token is verified. */
  readonly roles?: readonly string[];
  /** The issuer's `claims.scopes` claim (space-separated string or array), resolved once when verified. */
  readonly scopes?: readonly string[];
  /** exp, in seconds since the epoch. */
  readonly exp: number;
}

/**
 * Why a token could not be judged at all, when that is not the token's fault: 'keys_unavailable'
 * when its issuer has no usable keys (its JWKS never loaded), a dependency outage that the engine
 * answers with dependency_unavailable and counts against no one.
 */
/** keys_unavailable: the issuer's JWKS is down (not the client's fault); unknown_kid: the kid is in no key set, e.g. just rotated out. */
export type AuthFault = 'keys_unavailable' | 'unknown_kid';

export type AuthResult =
  | { readonly ok: true; readonly identity: Identity }
  | { readonly ok: false; readonly reason: Reason; readonly detail: string; readonly fault?: AuthFault };

/** One line of the explanation of a decision: what each check concluded. */
export interface CheckTrace {
  readonly check: string;
  readonly verdict: 'pass' | 'deny' | 'skip' | 'shadow_deny';
  readonly reason?: Reason;
  readonly detail?: string;
}

export interface Decision {
  readonly allow: boolean;
  readonly reason: Reason;
  readonly decisionId: string;
  readonly sub?: string | undefined;
  /** The verified token's issuer and audience claim, for the decision log. */
  readonly iss?: string | undefined;
  readonly aud?: unknown;
  readonly riskScore?: number | undefined;
  readonly resource?: string | undefined;
  /** Overrides the default WWW-Authenticate challenge (RFC 9470 step-up carries acr_values/max_age). */
  readonly challenge?: string | undefined;
  /** Internal detail for logs and explain; never sent to the client. */
  readonly detail?: string | undefined;
  /** Reasons that would have denied but were shadowed. */
  readonly shadowed?: readonly Reason[] | undefined;
  /** `policy.headers.claims` values for the upstream, on an allow; headers not listed here are removed. */
  readonly claimHeaders?: readonly (readonly [string, string])[] | undefined;
}
