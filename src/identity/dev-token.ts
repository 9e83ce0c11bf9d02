import { importJWK, SignJWT, type JWTPayload } from 'jose';
import { DEV_AUDIENCE, DEV_ISSUER, DEV_PRIVATE_JWKS } from '../dev/keys.js';

export interface DevTokenOptions {
  readonly sub: string;
  readonly ttlS: number;
  /** Extra claims; they may override iss, aud, iat and exp (tests use that to mint wrong tokens). Without exp, exp is now + ttlS. */
  readonly claims?: Readonly<Record<string, unknown>>;
  readonly alg?: 'RS256' | 'ES256';
  /** Defaults to the kid of the bundled key for `alg`. */
  readonly kid?: string;
}

/**
 * Mints a token with the bundled DEVELOPMENT key. Anyone can do the same (the key is public), so
 * such tokens are only ever accepted by a server running with identity.development_keys.
 */
export async function signDevToken(opts: DevTokenOptions): Promise<string> {
  const alg = opts.alg ?? 'RS256';
  const jwk = DEV_PRIVATE_JWKS.find((k) => k.alg === alg);
  if (!jwk) throw new Error(`no development key for ${alg}`);
  const key = await importJWK(jwk, alg);
  const now = Math.floor(Date.now() / 1000);
  const payload: JWTPayload = { iss: DEV_ISSUER, aud: DEV_AUDIENCE, iat: now, ...opts.claims, sub: opts.sub, exp: typeof opts.claims?.exp === 'number' ? opts.claims.exp : now + opts.ttlS };
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT', kid: opts.kid ?? jwk.kid }).sign(key);
}
