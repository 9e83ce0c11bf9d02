import type { PolicyConfig } from '../config/schema/policy.js';
import { ownValue, SENSITIVITY_RANK } from './ranks.js';

type RiskConfig = PolicyConfig['risk'];

/**
 * A missing score gets the configured default. Anything else that is not a number in [0, 1]
 * (a string, NaN, 1.5, -0.1) is treated as 1, the highest risk: a garbled claim from a trusted
 * issuer is an error to fail closed on, never a reason to relax.
 */
export function scoreFromClaim(value: unknown, defaultScore: number): number {
  if (value === undefined) return defaultScore;
  return isScore(value) ? value : 1;
}

export function isScore(value: unknown): value is number {
  return typeof value === 'number' && value >= 0 && value <= 1;
}

/** Highest sensitivity rank (0 low … 2 high) allowed at `score`: the cap of the highest tier it is above. */
export function compileCaps(caps: RiskConfig['sensitivity_caps']): (score: number) => number {
  const sorted = caps
    .map((c) => ({ above: c.above, rank: SENSITIVITY_RANK.get(c.max) ?? 0 }))
    .sort((a, b) => b.above - a.above);
  return (score) => {
    for (const c of sorted) if (score > c.above) return c.rank;
    return 2;
  };
}

export type MfaVerdict = 'ok' | 'missing' | 'stale';

export interface MfaRule {
  readonly amr: ReadonlySet<string>;
  readonly acr: ReadonlySet<string>;
  readonly maxAgeS: number | undefined;
}

/**
 * Evidence is an `amr` array (RFC 8176) holding a configured method, or an `acr` string in the
 * configured set. With max_age, `auth_time` must also be a number no older than max_age seconds.
 */
export function mfaEvidence(claims: object, rule: MfaRule, nowMs: number): MfaVerdict {
  let method = false;
  const amr = ownValue(claims, 'amr');
  if (Array.isArray(amr)) {
    for (const v of amr) {
      if (typeof v === 'string' && rule.amr.has(v)) {
        method = true;
        break;
      }
    }
  }
  if (!method) {
    const acr = ownValue(claims, 'acr');
    method = typeof acr === 'string' && rule.acr.has(acr);
  }
  if (!method) return 'missing';
  if (rule.maxAgeS === undefined) return 'ok';
  const authTime = ownValue(claims, 'auth_time');
  return typeof authTime === 'number' && Number.isFinite(authTime) && authTime >= nowMs / 1000 - rule.maxAgeS
    ? 'ok'
    : 'stale';
}

/**
 * The RFC 9470 section 3 challenge, byte for byte in the form of its examples: acr_values only when
 * acr values are configured, max_age (as a quoted-string, like the RFC's `max_age="5"`) only when
 * max_age_s is. The description says what is missing: the method, or its recency.
 */
export function stepUpChallenge(acr: readonly string[], maxAgeS: number | undefined, verdict: 'missing' | 'stale'): string {
  const description =
    verdict === 'stale' ? 'More recent authentication is required' : 'A different authentication level is required';
  let challenge = `Bearer error="insufficient_user_authentication", error_description="${description}"`;
  if (acr.length > 0) challenge += `, acr_values="${acr.join(' ')}"`;
  if (maxAgeS !== undefined) challenge += `, max_age="${maxAgeS}"`;
  return challenge;
}

/** A verified device: the claim is the boolean true, or the posture header is exactly "true". */
export function deviceVerified(
  claimValue: unknown,
  headers: Readonly<Record<string, string>>,
  header: string | undefined,
): boolean {
  if (claimValue === true) return true;
  return header !== undefined && Object.hasOwn(headers, header) && headers[header] === 'true';
}
