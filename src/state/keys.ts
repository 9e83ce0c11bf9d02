import { canonicalIp, parseCidr } from '../ip.js';

/** Key families, named exactly as the zero-trust guides write them. */
export type ListKind = 'suspended_user' | 'blocked_ip' | 'blocked_cidr' | 'user_risk';
export const LIST_KINDS: readonly ListKind[] = ['suspended_user', 'blocked_ip', 'blocked_cidr', 'user_risk'];

export const DEFAULT_SUSPEND_TTL_S = 3600;
export const DEFAULT_BLOCK_TTL_S = 1800;
/** Ten years: anything longer is almost certainly a typo in seconds vs. milliseconds. */
export const MAX_TTL_S = 10 * 365 * 24 * 3600;

export class KeySpace {
  constructor(readonly prefix: string) {}

  key(kind: ListKind, id: string): string {
    return `${this.prefix}${kind}:${id}`;
  }

  get alerts(): string {
    return `${this.prefix}security_alerts`;
  }

  authFailures(ip: string): string {
    return `${this.prefix}auth_failures:${ip}`;
  }

  /** Prefixes for CLIENT TRACKING BCAST and SCAN MATCH. */
  trackedPrefixes(): string[] {
    return LIST_KINDS.map((k) => `${this.prefix}${k}:`);
  }

  parse(key: string): { kind: ListKind; id: string } | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const rest = key.slice(this.prefix.length);
    const colon = rest.indexOf(':');
    if (colon <= 0) return undefined;
    const kind = rest.slice(0, colon) as ListKind;
    if (!LIST_KINDS.includes(kind)) return undefined;
    const id = rest.slice(colon + 1);
    return id === '' ? undefined : { kind, id };
  }
}

/** Thrown for admin input that must be rejected before anything is written. */
export class StateInputError extends Error {}

export function validateUser(sub: string): string {
  // Control characters and whitespace would make keys that nobody can type back to undo them.
  if (sub.length === 0 || sub.length > 512 || /[\s\p{Cc}]/u.test(sub)) {
    throw new StateInputError(`invalid user id ${JSON.stringify(sub)}: expected 1-512 characters without whitespace`);
  }
  return sub;
}

export function validateTtl(ttlS: number, what = 'ttl'): number {
  if (!Number.isInteger(ttlS) || ttlS <= 0 || ttlS > MAX_TTL_S) {
    throw new StateInputError(`invalid ${what} ${String(ttlS)}: expected whole seconds between 1 and ${MAX_TTL_S}`);
  }
  return ttlS;
}

export function validateScore(score: number): number {
  if (!Number.isFinite(score) || score < 0 || score > 1) {
    throw new StateInputError(`invalid risk score ${String(score)}: expected a number from 0 to 1`);
  }
  return score;
}

/** An exact IP (-> blocked_ip) or a CIDR (-> blocked_cidr), in canonical text. */
export function parseBlockTarget(text: string): { kind: 'blocked_ip' | 'blocked_cidr'; id: string } {
  if (text.includes('/')) {
    const c = parseCidr(text);
    if (c === undefined) throw new StateInputError(`invalid CIDR ${JSON.stringify(text)}`);
    if (c.hostBitsSet) {
      throw new StateInputError(`invalid CIDR ${JSON.stringify(text)}: host bits are set (did you mean ${c.canonical}?)`);
    }
    return { kind: 'blocked_cidr', id: c.canonical };
  }
  const ip = canonicalIp(text);
  if (ip === undefined) throw new StateInputError(`invalid IP address ${JSON.stringify(text)}`);
  return { kind: 'blocked_ip', id: ip };
}

/** Risk scores written by other tools: clamp to 0..1; garbage counts as maximal risk (fail closed). */
export function parseStoredScore(value: string | null): number {
  if (value === null) return 1;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) return 1;
  return Math.min(1, Math.max(0, n));
}
