import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { Algorithm } from '../config/schema/identity.js';
import { decodeCanonical } from './base64url.js';
import { hasRocaFingerprint } from './roca.js';

/** A verification key imported once per JWKS load. */
export interface KeyRecord {
  readonly kid: string | undefined;
  readonly kty: 'RSA' | 'EC' | 'OKP' | 'oct';
  readonly crv: string | undefined;
  /** The JWK's own `alg`, which then binds the key to exactly that algorithm. */
  readonly alg: string | undefined;
  readonly key: KeyObject | Buffer;
  /** Identity of the public key material; a refresh keeps the same record when it is unchanged. */
  readonly fingerprint: string;
  /** Cleared when a refresh drops or replaces this key: cached tokens it verified stop being served. */
  live: boolean;
}

export interface KeySet {
  readonly byKid: ReadonlyMap<string, KeyRecord>;
  /** For tokens without `kid`: the only key usable with that alg, or null when there are several. */
  readonly soleByAlg: ReadonlyMap<string, KeyRecord | null>;
  readonly size: number;
}

export const EMPTY_KEY_SET: KeySet = { byKid: new Map(), soleByAlg: new Map(), size: 0 };

const MIN_RSA_BITS = 2048;
/** JWK members of private keys (RFC 7518 §6.2.2, §6.3.2, §6.4.1): a JWKS must publish public keys only. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** Algorithm <-> key binding. A key may be used for an alg only if its type (and curve) fit. */
export function keyFitsAlg(alg: string, rec: KeyRecord): boolean {
  if (rec.alg !== undefined && rec.alg !== alg) return false;
  switch (alg) {
    case 'RS256':
    case 'RS384':
    case 'RS512':
    case 'PS256':
    case 'PS384':
    case 'PS512':
      return rec.kty === 'RSA';
    case 'ES256':
      return rec.kty === 'EC' && rec.crv === 'P-256';
    case 'ES384':
      return rec.kty === 'EC' && rec.crv === 'P-384';
    case 'EdDSA':
      return rec.kty === 'OKP' && rec.crv === 'Ed25519';
    case 'HS256':
      return rec.kty === 'oct';
    default:
      return false;
  }
}

export interface LoadedKeys {
  readonly set: KeySet;
  /** Why keys were dropped, one line each, for the log. */
  readonly rejected: string[];
}

/**
 * Validates and imports a JWKS document. Bad keys are dropped (with the reason) rather than failing
 * the whole set, so one odd key at the IdP cannot take every token down; a set with no usable key
 * is an error for the caller to handle (it keeps the previous set).
 * `previous` lets unchanged keys keep their record, so cached tokens survive a routine refresh.
 */
export function loadJwks(doc: unknown, allowed: readonly Algorithm[], previous: KeySet): LoadedKeys {
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw new Error('JWKS document has no "keys" array');
  }
  const rejected: string[] = [];
  const candidates: KeyRecord[] = [];
  const kidCount = new Map<string, number>();
  for (const [i, raw] of ((doc as { keys: unknown[] }).keys).entries()) {
    const label = typeof raw === 'object' && raw !== null && typeof (raw as JsonWebKey).kid === 'string'
      ? `kid ${JSON.stringify((raw as JsonWebKey).kid)}`
      : `key #${i}`;
    const result = importJwk(raw, allowed);
    if (typeof result === 'string') {
      rejected.push(`${label}: ${result}`);
      continue;
    }
    candidates.push(result);
    if (result.kid !== undefined) kidCount.set(result.kid, (kidCount.get(result.kid) ?? 0) + 1);
  }
  const previousByFingerprint = new Map<string, KeyRecord>();
  // A retired record stays retired: a key that returns gets a new record (its cached tokens re-verify).
  for (const rec of previous.byKid.values()) if (rec.live) previousByFingerprint.set(`${rec.kid}\n${rec.fingerprint}`, rec);
  for (const rec of previous.soleByAlg.values()) if (rec?.live) previousByFingerprint.set(`${rec.kid}\n${rec.fingerprint}`, rec);

  const byKid = new Map<string, KeyRecord>();
  const usable: KeyRecord[] = [];
  for (const fresh of candidates) {
    if (fresh.kid !== undefined && (kidCount.get(fresh.kid) ?? 0) > 1) {
      // Which of two keys a kid means is ambiguous: trust neither.
      rejected.push(`kid ${JSON.stringify(fresh.kid)}: duplicate kid, all keys with it dropped`);
      continue;
    }
    const rec = previousByFingerprint.get(`${fresh.kid}\n${fresh.fingerprint}`) ?? fresh;
    usable.push(rec);
    if (rec.kid !== undefined) byKid.set(rec.kid, rec);
  }
  const soleByAlg = new Map<string, KeyRecord | null>();
  for (const alg of allowed) {
    const fitting = usable.filter((k) => keyFitsAlg(alg, k));
    if (fitting.length > 0) soleByAlg.set(alg, fitting.length === 1 ? fitting[0]! : null);
  }
  return { set: { byKid, soleByAlg, size: usable.length }, rejected };
}

/** Marks records of `previous` that `next` no longer contains as dead. */
export function retireDropped(previous: KeySet, next: KeySet): number {
  const keep = new Set<KeyRecord>([...next.byKid.values()]);
  for (const rec of next.soleByAlg.values()) if (rec) keep.add(rec);
  let dropped = 0;
  const old = new Set<KeyRecord>([...previous.byKid.values()]);
  for (const rec of previous.soleByAlg.values()) if (rec) old.add(rec);
  for (const rec of old) {
    if (!keep.has(rec) && rec.live) {
      rec.live = false;
      dropped++;
    }
  }
  return dropped;
}

/** Marks every record of `set` dead (the set expired): no cached token it verified is served. */
export function retireAll(set: KeySet): void {
  for (const rec of set.byKid.values()) rec.live = false;
  for (const rec of set.soleByAlg.values()) if (rec) rec.live = false;
}

function importJwk(raw: unknown, allowed: readonly Algorithm[]): KeyRecord | string {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'not an object';
  const jwk = raw as Record<string, unknown>;
  const { kty, kid, alg, use, key_ops: keyOps } = jwk;
  // A symmetric key published in a JWKS is either a leak or a key-confusion setup.
  if (kty === 'oct') return 'symmetric (oct) keys are never accepted from a JWKS; use hs256_secret_env';
  const privateMembers = PRIVATE_MEMBERS.filter((m) => Object.hasOwn(jwk, m));
  if (privateMembers.length > 0) {
    // The IdP is misconfigured and its secret is public: never use the key, whatever else it says.
    return `publishes private key material (${privateMembers.join(', ')}); a JWKS must hold public keys only, the key is not used`;
  }
  if (kid !== undefined && typeof kid !== 'string') return 'kid is not a string';
  if (use !== undefined && use !== 'sig') return `use ${JSON.stringify(use)} is not "sig"`;
  if (keyOps !== undefined && !(Array.isArray(keyOps) && keyOps.includes('verify'))) return 'key_ops lacks "verify"';
  if (alg !== undefined && (typeof alg !== 'string' || !(allowed as readonly string[]).includes(alg))) {
    return `alg ${JSON.stringify(alg)} is not allowed for this issuer`;
  }
  let pub: JsonWebKey;
  let crv: string | undefined;
  let recKty: KeyRecord['kty'];
  switch (kty) {
    case 'RSA': {
      const n = typeof jwk.n === 'string' ? decodeCanonical(jwk.n) : undefined;
      const e = typeof jwk.e === 'string' ? decodeCanonical(jwk.e) : undefined;
      if (!n || !e) return 'RSA key without canonical n/e';
      const bits = bitLength(n);
      if (bits < MIN_RSA_BITS) return `RSA modulus of ${bits} bits is below ${MIN_RSA_BITS}`;
      if (hasRocaFingerprint(n)) return 'RSA modulus has the ROCA fingerprint (CVE-2017-15361: Infineon RSALib key, factorable)';
      const exp = e.length > 8 ? -1n : BigInt(`0x${e.toString('hex') || '0'}`);
      if (exp < 3n || exp % 2n === 0n) return `RSA exponent ${exp < 0n ? '(huge)' : exp} is not an odd value >= 3`;
      pub = { kty: 'RSA', n: jwk.n as string, e: jwk.e as string };
      recKty = 'RSA';
      break;
    }
    case 'EC': {
      if (jwk.crv !== 'P-256' && jwk.crv !== 'P-384') return `EC curve ${JSON.stringify(jwk.crv)} not supported`;
      if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') return 'EC key without x/y';
      crv = jwk.crv;
      pub = { kty: 'EC', crv, x: jwk.x, y: jwk.y };
      recKty = 'EC';
      break;
    }
    case 'OKP': {
      if (jwk.crv !== 'Ed25519') return `OKP curve ${JSON.stringify(jwk.crv)} not supported`;
      if (typeof jwk.x !== 'string') return 'OKP key without x';
      crv = 'Ed25519';
      pub = { kty: 'OKP', crv, x: jwk.x };
      recKty = 'OKP';
      break;
    }
    default:
      return `kty ${JSON.stringify(kty)} not supported`;
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pub, format: 'jwk' });
  } catch (err) {
    return `import failed: ${(err as Error).message}`;
  }
  const rec: KeyRecord = {
    kid,
    kty: recKty,
    crv,
    alg: alg as string | undefined,
    key,
    fingerprint: createHash('sha256').update(JSON.stringify([pub, alg ?? null])).digest('base64url'),
    live: true,
  };
  if (!allowed.some((a) => keyFitsAlg(a, rec))) return 'fits none of the issuer\'s algorithms';
  return rec;
}

function bitLength(bytes: Buffer): number {
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  if (i === bytes.length) return 0;
  return (bytes.length - i - 1) * 8 + (32 - Math.clz32(bytes[i]!));
}

/** The HS256 secret as a key record of its own: it never lives in a KeySet. */
export function secretRecord(secret: Buffer): KeyRecord {
  return {
    kid: undefined,
    kty: 'oct',
    crv: undefined,
    alg: 'HS256',
    key: secret,
    fingerprint: createHash('sha256').update(secret).digest('base64url'),
    live: true,
  };
}
