import { compileClaimPath, describeClaimPath } from '../config/claim-path.js';
import type { IssuerConfig } from '../config/schema/identity.js';
import type { DenyReason } from '../reasons.js';

export interface ClaimRules {
  readonly issuer: string;
  readonly audiences: ReadonlySet<string>;
  readonly clockSkewS: number;
  readonly maxLifetimeS: number;
  /** The issuer's `claims`, compiled: where the user id, roles and scopes are. */
  readonly mapping: ClaimMapping;
}

export interface ClaimMapping {
  readonly subject: (claims: object) => unknown;
  readonly subjectName: string;
  readonly roles: readonly ((claims: object) => unknown)[];
  readonly scopes: (claims: object) => unknown;
}

export function compileClaimMapping(c: IssuerConfig['claims']): ClaimMapping {
  return {
    subject: compileClaimPath(c.subject),
    subjectName: describeClaimPath(c.subject),
    roles: c.roles.map(compileClaimPath),
    scopes: compileClaimPath(c.scopes),
  };
}

const EMPTY: readonly string[] = Object.freeze([]);

/**
 * The caller's roles: every configured claim merged, in order, without duplicates. An array
 * contributes its strings (other entries ignored), a string counts as one role, anything else nothing.
 * Resolved once per verified token; the result is cached with the claims.
 */
export function resolveRoles(claims: object, mapping: ClaimMapping): readonly string[] {
  if (mapping.roles.length === 0) return EMPTY;
  const roles = new Set<string>();
  for (const get of mapping.roles) {
    const v = get(claims);
    if (typeof v === 'string') {
      if (v !== '') roles.add(v);
    } else if (Array.isArray(v)) {
      for (const r of v) if (typeof r === 'string' && r !== '') roles.add(r);
    }
  }
  return roles.size === 0 ? EMPTY : Object.freeze([...roles]);
}

/** OAuth scopes: a space-separated string (RFC 8693 / RFC 9068 `scope`) or an array of strings (Entra `scp`). */
export function resolveScopes(claims: object, mapping: ClaimMapping): readonly string[] {
  const v = mapping.scopes(claims);
  let list: string[];
  if (typeof v === 'string') list = v.split(' ').filter((s) => s !== '');
  else if (Array.isArray(v)) list = v.filter((s): s is string => typeof s === 'string' && s !== '');
  else return EMPTY;
  return list.length === 0 ? EMPTY : Object.freeze([...new Set(list)]);
}

export interface ClaimFailure {
  readonly reason: DenyReason;
  readonly detail: string;
}

export interface ValidClaims {
  readonly sub: string;
  readonly exp: number;
  /** max(nbf, iat), or -Infinity when neither is present. */
  readonly notBefore: number;
}

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Registered-claim checks of RFC 7519 §4.1 with the stricter defaults jose lacks: exp is required,
 * iat may not be in the future, and the lifetime is bounded. Runs after the signature is verified,
 * so the reasons describe a genuine token of a known issuer.
 */
export function checkClaims(p: Record<string, unknown>, rules: ClaimRules, nowMs: number): ValidClaims | ClaimFailure {
  const now = nowMs / 1000;
  const skew = rules.clockSkewS;
  const { exp, nbf, iat, iss, aud } = p;
  const sub = rules.mapping.subject(p);
  if (iss !== rules.issuer) return { reason: 'issuer_unknown', detail: 'iss does not match the issuer' };
  if (exp === undefined) return { reason: 'token_invalid', detail: 'exp missing' };
  if (!isTime(exp)) return { reason: 'token_invalid', detail: 'exp is not a finite number' };
  if (nbf !== undefined && !isTime(nbf)) return { reason: 'token_invalid', detail: 'nbf is not a finite number' };
  if (iat !== undefined && !isTime(iat)) return { reason: 'token_invalid', detail: 'iat is not a finite number' };
  if (now >= exp + skew) return { reason: 'token_expired', detail: `expired ${Math.round(now - exp)} s ago` };
  if (nbf !== undefined && now < nbf - skew) return { reason: 'token_not_yet_valid', detail: 'nbf is in the future' };
  if (iat !== undefined && iat > now + skew) return { reason: 'token_not_yet_valid', detail: 'iat is in the future' };
  const lifetime = exp - (iat ?? now);
  if (lifetime > rules.maxLifetimeS) {
    return { reason: 'token_lifetime_exceeded', detail: `lifetime ${lifetime} s exceeds ${rules.maxLifetimeS} s` };
  }
  if (aud === undefined) return { reason: 'audience_mismatch', detail: 'aud missing' };
  if (typeof aud === 'string') {
    if (!rules.audiences.has(aud)) return { reason: 'audience_mismatch', detail: 'aud names none of the audiences' };
  } else if (Array.isArray(aud)) {
    if (aud.length === 0) return { reason: 'token_invalid', detail: 'aud is an empty array' };
    let match = false;
    for (const a of aud) {
      if (typeof a !== 'string') return { reason: 'token_invalid', detail: 'aud array holds a non-string' };
      if (rules.audiences.has(a)) match = true;
    }
    if (!match) return { reason: 'audience_mismatch', detail: 'aud names none of the audiences' };
  } else {
    return { reason: 'token_invalid', detail: 'aud is neither a string nor an array' };
  }
  if (typeof sub !== 'string' || sub === '') {
    return { reason: 'token_invalid', detail: `${rules.mapping.subjectName} (the subject claim) missing or not a non-empty string` };
  }
  const nb = Math.max(isTime(nbf) ? nbf : Number.NEGATIVE_INFINITY, isTime(iat) ? iat : Number.NEGATIVE_INFINITY);
  return { sub, exp, notBefore: nb };
}
