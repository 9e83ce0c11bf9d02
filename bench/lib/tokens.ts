import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEV_AUDIENCE, DEV_ISSUER, DEV_PRIVATE_JWKS } from '../../src/dev/keys.js';
import { b64url, signBytes } from '../../test/helpers/tokens.js';

export type BenchAlg = 'RS256' | 'ES256';

/** Claims every bench user gets: the full policy runs (risk, allow list, clearance) and allows /api/orders. */
export function userClaims(sub: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    allowed_resources: ['orders', 'profile', 'public'],
    clearance_level: 'internal',
    risk_score: 0.1,
    ...extra,
    sub,
  };
}

const keys = new Map<BenchAlg, { kid: string; key: KeyObject }>();

function devKey(alg: BenchAlg): { kid: string; key: KeyObject } {
  let k = keys.get(alg);
  if (!k) {
    const jwk = DEV_PRIVATE_JWKS.find((j) => j.alg === alg);
    if (!jwk) throw new Error(`no development key for ${alg}`);
    k = { kid: jwk.kid, key: createPrivateKey({ key: jwk as never, format: 'jwk' }) };
    keys.set(alg, k);
  }
  return k;
}

/**
 * Signs with node:crypto and the bundled DEVELOPMENT key (the bench server runs with
 * development_keys). Much faster than jose's SignJWT, which matters for 100,000 tokens.
 */
export function mintToken(alg: BenchAlg, claims: Record<string, unknown>, opts: { ttlS?: number; nowS?: number; iss?: string; aud?: string } = {}): string {
  const { kid, key } = devKey(alg);
  const now = opts.nowS ?? Math.floor(Date.now() / 1000);
  const payload = { iss: opts.iss ?? DEV_ISSUER, aud: opts.aud ?? DEV_AUDIENCE, iat: now - 5, exp: now + (opts.ttlS ?? 3600), ...claims };
  const input = `${b64url({ alg, typ: 'JWT', kid })}.${b64url(payload)}`;
  return `${input}.${b64url(signBytes(alg, input, key))}`;
}

/** A token with a valid structure whose signature was made with a key the server does not know. */
export function forgedToken(claims: Record<string, unknown>): string {
  const good = mintToken('ES256', claims);
  const [h, p, s] = good.split('.') as [string, string, string];
  const sig = Buffer.from(s, 'base64url');
  sig[10] = sig[10]! ^ 0xff;
  return `${h}.${p}.${sig.toString('base64url')}`;
}

/**
 * `count` distinct tokens (users u0..u{count-1} cycling through `users`), each unique by its jti.
 * RSA signing runs at ~1-2k/s per core, so large sets are cached on disk for reuse while they
 * have at least an hour left to live.
 */
export function distinctTokens(alg: BenchAlg, count: number, opts: { users?: number; cacheDir?: string; progress?: (done: number) => void } = {}): string[] {
  const users = opts.users ?? count;
  const lifeS = 6 * 3600;
  const tag = createHash('sha256').update(JSON.stringify({ alg, count, users, claims: userClaims('x'), kid: devKey(alg).kid })).digest('hex').slice(0, 12);
  const file = opts.cacheDir ? join(opts.cacheDir, `tokens-${alg}-${count}-${tag}.json`) : undefined;
  const nowS = Math.floor(Date.now() / 1000);
  if (file && existsSync(file)) {
    const cached = JSON.parse(readFileSync(file, 'utf8')) as { exp: number; tokens: string[] };
    if (cached.exp - nowS > 3600 && cached.tokens.length === count) return cached.tokens;
  }
  const out: string[] = new Array<string>(count);
  for (let i = 0; i < count; i++) {
    out[i] = mintToken(alg, userClaims(`u${i % users}`, { jti: `b${nowS.toString(36)}-${i}` }), { nowS, ttlS: lifeS });
    if (opts.progress && i % 5000 === 4999) opts.progress(i + 1);
  }
  if (file && count >= 2000) {
    mkdirSync(opts.cacheDir!, { recursive: true });
    writeFileSync(file, JSON.stringify({ exp: nowS + lifeS, tokens: out }));
  }
  return out;
}
