import type { DenyReason } from '../reasons.js';

export interface ClaimRules {
  readonly issuer: string;
  readonly audiences: ReadonlySet<string>;
  readonly clockSkewS: number;
  readonly maxLifetimeS: number;
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
  const { exp, nbf, iat, iss, aud, sub } = p;
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
  if (typeof sub !== 'string' || sub === '') return { reason: 'token_invalid', detail: 'sub missing or not a non-empty string' };
  const nb = Math.max(isTime(nbf) ? nbf : Number.NEGATIVE_INFINITY, isTime(iat) ? iat : Number.NEGATIVE_INFINITY);
  return { sub, exp, notBefore: nb };
}
