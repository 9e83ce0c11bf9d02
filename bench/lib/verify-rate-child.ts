/**
 * Raw signature-verification rates on this core, for the distinct-token scenario to compare
 * against: node:crypto verify alone (the ceiling for a server that verifies every call) and
 * jose's jwtVerify (what a straightforward implementation gets).
 * Usage: node verify-rate-child.js SECONDS   (prints READY_PREFIX + VerifyRates JSON)
 */
import { createPublicKey, verify } from 'node:crypto';
import { importJWK, jwtVerify } from 'jose';
import { DEV_AUDIENCE, DEV_ISSUER, DEV_PRIVATE_JWKS } from '../../src/dev/keys.js';
import { READY_PREFIX } from './proc.js';
import { mintToken, userClaims, type BenchAlg } from './tokens.js';

export type VerifyRates = Record<BenchAlg, { crypto: number; jose: number }>;

const seconds = Number(process.argv[2] ?? '1');

function publicJwk(alg: BenchAlg) {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = DEV_PRIVATE_JWKS.find((k) => k.alg === alg)!;
  return pub;
}

function cryptoRate(alg: BenchAlg): number {
  const token = mintToken(alg, userClaims('alice'));
  const dot = token.lastIndexOf('.');
  const input = Buffer.from(token.slice(0, dot));
  const sig = Buffer.from(token.slice(dot + 1), 'base64url');
  const key = createPublicKey({ key: publicJwk(alg) as never, format: 'jwk' });
  const opts = alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' as const } : key;
  let n = 0;
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  while (performance.now() < until) {
    for (let i = 0; i < 50; i++) if (!verify('sha256', input, opts, sig)) throw new Error('verify failed');
    n += 50;
  }
  return n / ((performance.now() - started) / 1000);
}

async function joseRate(alg: BenchAlg): Promise<number> {
  const token = mintToken(alg, userClaims('alice'));
  const key = await importJWK(publicJwk(alg), alg);
  const opts = { issuer: DEV_ISSUER, audience: DEV_AUDIENCE, algorithms: [alg] };
  let n = 0;
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  while (performance.now() < until) {
    // Several in flight, as a server with concurrent requests would have.
    await Promise.all(Array.from({ length: 32 }, () => jwtVerify(token, key, opts)));
    n += 32;
  }
  return n / ((performance.now() - started) / 1000);
}

const rates: VerifyRates = {
  RS256: { crypto: cryptoRate('RS256'), jose: await joseRate('RS256') },
  ES256: { crypto: cryptoRate('ES256'), jose: await joseRate('ES256') },
};
process.stdout.write(`${READY_PREFIX}${JSON.stringify(rates)}\n`);
