/**
 * Signature-verification rates on the server core, for the distinct-token scenario to compare
 * against: node:crypto verify alone (the ceiling for a server that verifies every call) and
 * zt-authz's own verification pipeline on the scenario's distinct tokens, taking turns in the
 * same rounds (bench/lib/verify-rates.ts), then jose's jwtVerify (what a straightforward
 * implementation gets), all in one process.
 * Usage: node verify-rate-child.js SECONDS TOKENS.json   (prints READY_PREFIX + VerifyRates JSON)
 */
import { readFileSync } from 'node:fs';
import { importJWK, jwtVerify } from 'jose';
import { DEV_AUDIENCE, DEV_ISSUER, DEV_PRIVATE_JWKS } from '../../src/dev/keys.js';
import { READY_PREFIX } from './proc.js';
import { mintToken, userClaims, type BenchAlg } from './tokens.js';
import { pipelineVsCrypto } from './verify-rates.js';

/** crypto and pipeline: medians over rounds (bench/lib/verify-rates.ts); ratio: median of the per-round pipeline/crypto ratios. */
export type VerifyRates = Record<BenchAlg, { crypto: number; jose: number; pipeline: number; ratio: number }>;

const seconds = Number(process.argv[2] ?? '1');
const tokens = JSON.parse(readFileSync(process.argv[3]!, 'utf8')) as Record<BenchAlg, string[]>;

function publicJwk(alg: BenchAlg) {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = DEV_PRIVATE_JWKS.find((k) => k.alg === alg)!;
  return pub;
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

/** Tokens per algorithm the pipeline/raw comparison uses: enough for stable rounds, a few seconds in all. */
const PIPELINE_TOKENS = 4000;

async function ratesOf(alg: BenchAlg): Promise<VerifyRates[BenchAlg]> {
  const r = await pipelineVsCrypto(alg, tokens[alg].slice(0, PIPELINE_TOKENS), seconds < 1 ? 1 : 9);
  return { crypto: r.crypto, pipeline: r.pipeline, ratio: r.ratio, jose: await joseRate(alg) };
}

const rates: VerifyRates = { RS256: await ratesOf('RS256'), ES256: await ratesOf('ES256') };
process.stdout.write(`${READY_PREFIX}${JSON.stringify(rates)}\n`);
