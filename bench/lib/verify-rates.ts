/**
 * zt-authz's verification pipeline on distinct tokens against raw node:crypto verify of the same
 * signatures, in one process, taking turns every few hundred tokens.
 *
 * Raw: `crypto.verify` of each token's signature over its signing input, both decoded before
 * timing, with a KeyObject built before timing: the ceiling for a verifier. Pipeline: the
 * server's own Authenticator (bench config, development keys) on the same tokens, each once
 * through a fresh instance, so every call is a cache miss: split, canonical base64url, strict
 * JSON of header and payload, key selection, signature, claims, roles and scopes, cache insert.
 *
 * Timed in process CPU time (user + system, GC helper threads included): on a shared machine the
 * wall clock also counts the time other processes held the core.
 */
import { createPublicKey, verify, type KeyObject, type VerifyKeyObjectInput } from 'node:crypto';
import { validate } from '../../src/config/load.js';
import { DEV_PRIVATE_JWKS } from '../../src/dev/keys.js';
import { createAuthenticator } from '../../src/identity/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { benchConfig } from './config.js';
import type { BenchAlg } from './tokens.js';

export interface RatePair {
  /** Raw node:crypto verifies per CPU second. */
  readonly crypto: number;
  /** Pipeline verifications per CPU second. */
  readonly pipeline: number;
}

export interface PipelineVsCrypto {
  readonly rounds: readonly RatePair[];
  readonly crypto: number;
  readonly pipeline: number;
  /** Median of the per-round pipeline/crypto ratios. */
  readonly ratio: number;
}

export function devPublicKey(alg: BenchAlg): KeyObject {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = DEV_PRIVATE_JWKS.find((k) => k.alg === alg)!;
  return createPublicKey({ key: pub as never, format: 'jwk' });
}

const cpuNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Tokens per slice: raw and pipeline take turns every slice, so both see the same machine. */
const SLICE = 200;

/**
 * One round: a fresh Authenticator (every token a cache miss), then the tokens slice by slice,
 * raw and pipeline taking turns on each slice (the order flipping from slice to slice).
 */
async function round(alg: BenchAlg, key: KeyObject, tokens: readonly string[], parts: readonly (readonly [Buffer, Buffer])[]): Promise<RatePair> {
  const loaded = validate(benchConfig({ decisionLog: 'none' }), 'bench', false);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const identity = { ...loaded.config.identity, token_cache: { ...loaded.config.identity.token_cache, max_entries: tokens.length + 1 } };
  const authn = createAuthenticator(identity, { logger: silentLogger, metrics: createMetrics() });
  await authn.start();
  const opts: KeyObject | VerifyKeyObjectInput = alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key;
  const now = Date.now();
  let rawS = 0;
  let pipeS = 0;
  const raw = (from: number, to: number) => {
    const t0 = cpuNow();
    for (let i = from; i < to; i++) if (!verify('sha256', parts[i]![0], opts, parts[i]![1])) throw new Error(`${alg}: raw verify refused a bench token`);
    rawS += cpuNow() - t0;
  };
  const pipeline = (from: number, to: number) => {
    const t0 = cpuNow();
    for (let i = from; i < to; i++) {
      const r = authn.authenticate(tokens[i]!, now);
      if (r instanceof Promise || !r.ok) throw new Error(`${alg}: the pipeline refused a bench token: ${JSON.stringify(r)}`);
    }
    pipeS += cpuNow() - t0;
  };
  for (let from = 0, s = 0; from < tokens.length; from += SLICE, s++) {
    const to = Math.min(from + SLICE, tokens.length);
    if (s % 2 === 0) {
      raw(from, to);
      pipeline(from, to);
    } else {
      pipeline(from, to);
      raw(from, to);
    }
  }
  authn.close();
  return { crypto: tokens.length / rawS, pipeline: tokens.length / pipeS };
}

/**
 * Rounds run and discarded before the counted ones. A server verifies for hours; the first rounds
 * of a fresh process measure V8 tiering up and the young generation growing to its size instead.
 * Measured with 4,000 RS256 tokens on Node 26, 8 runs: after one warm-up round the first counted
 * round gave 0.50-0.53x and the second 0.62-0.77x, and from the third on 0.64-0.89x (steady, with
 * one long-lived Authenticator as with a fresh one per round).
 */
export const WARM_UP_ROUNDS = 3;

/** `rounds` counted rounds after WARM_UP_ROUNDS discarded ones, each passing every token once through both. */
export async function pipelineVsCrypto(alg: BenchAlg, tokens: readonly string[], rounds: number): Promise<PipelineVsCrypto> {
  const key = devPublicKey(alg);
  const parts = tokens.map((t) => {
    const dot = t.lastIndexOf('.');
    return [Buffer.from(t.slice(0, dot), 'latin1'), Buffer.from(t.slice(dot + 1), 'base64url')] as const;
  });
  const out: RatePair[] = [];
  for (let r = -WARM_UP_ROUNDS; r < rounds; r++) {
    const pair = await round(alg, key, tokens, parts);
    if (r >= 0) out.push(pair);
  }
  return {
    rounds: out,
    crypto: median(out.map((p) => p.crypto)),
    pipeline: median(out.map((p) => p.pipeline)),
    ratio: median(out.map((p) => p.pipeline / p.crypto)),
  };
}
