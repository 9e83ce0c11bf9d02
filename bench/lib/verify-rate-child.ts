/**
 * Signature-verification rates on the server core, for the distinct-token scenario to compare
 * against: node:crypto verify alone (the ceiling for a server that verifies every call), jose's
 * jwtVerify (what a straightforward implementation gets) and zt-authz's own verification
 * pipeline (the server's Authenticator on the scenario's distinct tokens: structure, strict JSON,
 * key selection, signature, claims), all in one process, one after the other.
 * Usage: node verify-rate-child.js SECONDS TOKENS.json   (prints READY_PREFIX + VerifyRates JSON)
 */
import { createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { importJWK, jwtVerify } from 'jose';
import { validate } from '../../src/config/load.js';
import { DEV_AUDIENCE, DEV_ISSUER, DEV_PRIVATE_JWKS } from '../../src/dev/keys.js';
import { createAuthenticator } from '../../src/identity/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { benchConfig } from './config.js';
import { READY_PREFIX } from './proc.js';
import { mintToken, userClaims, type BenchAlg } from './tokens.js';

export type VerifyRates = Record<BenchAlg, { crypto: number; jose: number; pipeline: number }>;

const seconds = Number(process.argv[2] ?? '1');
const tokens = JSON.parse(readFileSync(process.argv[3]!, 'utf8')) as Record<BenchAlg, string[]>;

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

/** Each distinct token once through a fresh Authenticator of the bench config: every call a cache miss. */
async function pipelineRate(alg: BenchAlg): Promise<number> {
  const loaded = validate(benchConfig({ decisionLog: 'none' }), 'bench', false);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const list = tokens[alg];
  const identity = { ...loaded.config.identity, token_cache: { ...loaded.config.identity.token_cache, max_entries: list.length + 1 } };
  // Timed like cryptoRate: total checks over total time spent verifying (setup excluded).
  let n = 0;
  let spentMs = 0;
  const until = performance.now() + seconds * 1000;
  do {
    const authn = createAuthenticator(identity, { logger: silentLogger, metrics: createMetrics() });
    await authn.start();
    const now = Date.now();
    const started = performance.now();
    for (const t of list) {
      const r = authn.authenticate(t, now);
      if (r instanceof Promise || !r.ok) throw new Error(`${alg}: the pipeline refused a bench token: ${JSON.stringify(r)}`);
    }
    spentMs += performance.now() - started;
    n += list.length;
    authn.close();
  } while (performance.now() < until);
  return n / (spentMs / 1000);
}

const rates: VerifyRates = {
  RS256: { crypto: cryptoRate('RS256'), jose: await joseRate('RS256'), pipeline: await pipelineRate('RS256') },
  ES256: { crypto: cryptoRate('ES256'), jose: await joseRate('ES256'), pipeline: await pipelineRate('ES256') },
};
process.stdout.write(`${READY_PREFIX}${JSON.stringify(rates)}\n`);
