/**
 * zt-authz's verification pipeline on distinct tokens (every call a verified-token cache miss)
 * against raw node:crypto verify of the same signatures with a pre-built KeyObject, in the same
 * run: taking turns every 200 tokens, CPU time, medians of rounds (bench/lib/verify-rates.ts). Also the cache-hit rate.
 * Prints figures; asserts nothing.
 *   npm run build && node dist/bench/jwt-verify.js [tokensPerAlg=4000] [rounds=9]
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validate } from '../src/config/load.js';
import { createAuthenticator } from '../src/identity/index.js';
import { silentLogger } from '../src/observability/logger.js';
import { createMetrics } from '../src/observability/metrics.js';
import { benchConfig } from './lib/config.js';
import { distinctTokens, type BenchAlg } from './lib/tokens.js';
import { pipelineVsCrypto, WARM_UP_ROUNDS } from './lib/verify-rates.js';

const N = Number(process.argv[2] ?? 4000);
const ROUNDS = Number(process.argv[3] ?? 9);
const algs: BenchAlg[] = ['RS256', 'ES256'];

async function hitRate(tokens: readonly string[]): Promise<number> {
  const loaded = validate(benchConfig({ decisionLog: 'none' }), 'bench', false);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const authn = createAuthenticator(loaded.config.identity, { logger: silentLogger, metrics: createMetrics() });
  await authn.start();
  const now = Date.now();
  const some = tokens.slice(0, 1000);
  for (const t of some) authn.authenticate(t, now);
  const HITS = 1_000_000;
  const t0 = performance.now();
  for (let h = 0; h < HITS; h++) authn.authenticate(some[h % some.length]!, now);
  const rate = HITS / ((performance.now() - t0) / 1000);
  authn.close();
  return rate;
}

const k = (x: number) => `${(x / 1000).toFixed(1)}k`;
console.log(`node ${process.version}, ${N} distinct tokens per alg, ${ROUNDS} rounds (+${WARM_UP_ROUNDS} warm-up), raw and pipeline alternating every 200 tokens, per CPU second`);
for (const alg of algs) {
  const tokens = distinctTokens(alg, N, { users: 1000, cacheDir: join(tmpdir(), 'zt-authz-bench-tokens') });
  const r = await pipelineVsCrypto(alg, tokens, ROUNDS);
  console.log(`${alg}  per round raw/pipeline: ${r.rounds.map((p) => `${k(p.crypto)}/${k(p.pipeline)}`).join(' ')}`);
  console.log(
    `${alg}  raw node:crypto ${Math.round(r.crypto)}/s (baseline)  zt-authz pipeline ${Math.round(r.pipeline)}/s  ` +
      `pipeline/raw ${r.ratio.toFixed(2)}x (median of per-round ratios, range ${Math.min(...r.rounds.map((p) => p.pipeline / p.crypto)).toFixed(2)}-${Math.max(...r.rounds.map((p) => p.pipeline / p.crypto)).toFixed(2)})  ` +
      `cache hit ${Math.round(await hitRate(tokens))}/s`,
  );
}
