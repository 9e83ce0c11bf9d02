/**
 * Verify rate of the identity verifier on unique tokens (verified-token cache misses) against raw
 * node:crypto verify of the same signatures, plus the cache-hit rate. Prints figures; asserts nothing.
 *   npx tsx bench/jwt-verify.ts [tokensPerAlg]
 */
import { constants, verify } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identitySchema } from '../src/config/schema/identity.js';
import { createAuthenticator } from '../src/identity/index.js';
import { silentLogger } from '../src/observability/logger.js';
import { createMetrics } from '../src/observability/metrics.js';
import { jwksOf, makeKey, tokenFactory, type TestAlg } from '../test/helpers/tokens.js';

const N = Number(process.argv[2] ?? 3000);
const ISSUER = 'https://bench.example';
const algs: TestAlg[] = ['RS256', 'PS256', 'ES256', 'EdDSA'];
const keys = algs.map((alg) => makeKey(alg, `k-${alg}`));
const dir = mkdtempSync(join(tmpdir(), 'zt-bench-'));
const file = join(dir, 'jwks.json');
writeFileSync(file, JSON.stringify(jwksOf(...keys)));
const f = tokenFactory(ISSUER, 'api');

function rawVerifier(alg: TestAlg, key: (typeof keys)[number]): (input: Buffer, sig: Buffer) => boolean {
  switch (alg) {
    case 'RS256':
      return (i, s) => verify('sha256', i, key.publicKey, s);
    case 'PS256':
      return (i, s) => verify('sha256', i, { key: key.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, s);
    case 'ES256':
      return (i, s) => verify('sha256', i, { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, s);
    case 'EdDSA':
      return (i, s) => verify(null, i, key.publicKey, s);
  }
}

async function freshAuthenticator() {
  const cfg = identitySchema.parse({
    issuers: [{ issuer: ISSUER, audiences: ['api'], algorithms: algs, keys: { jwks_file: file } }],
    token_cache: { max_entries: N * 2 },
  });
  const a = createAuthenticator(cfg, { logger: silentLogger, metrics: createMetrics() });
  await a.start();
  return a;
}

const rate = (n: number, ns: bigint) => Math.round(n / (Number(ns) / 1e9));

console.log(`node ${process.version}, ${N} unique tokens per alg, best of 3 rounds`);
console.log('alg     raw node:crypto/s   authenticate miss/s   ratio   cache hit/s');
for (const [i, alg] of algs.entries()) {
  const key = keys[i]!;
  const tokens = Array.from({ length: N }, (_, j) => f.mint({ key, claims: { sub: `user-${j}` } }));
  const parts = tokens.map((t) => {
    const d = t.lastIndexOf('.');
    return [Buffer.from(t.slice(0, d)), Buffer.from(t.slice(d + 1), 'base64url')] as const;
  });
  const raw = rawVerifier(alg, key);
  let bestRaw = 0;
  let bestMiss = 0;
  let bestHit = 0;
  for (let round = 0; round < 3; round++) {
    let t0 = process.hrtime.bigint();
    for (const [input, sig] of parts) if (!raw(input, sig)) throw new Error('raw verify failed');
    bestRaw = Math.max(bestRaw, rate(N, process.hrtime.bigint() - t0));

    const authn = await freshAuthenticator();
    const now = Date.now();
    t0 = process.hrtime.bigint();
    for (const t of tokens) {
      const r = authn.authenticate(t, now);
      if (r instanceof Promise || !r.ok) throw new Error(`authenticate failed: ${JSON.stringify(r)}`);
    }
    bestMiss = Math.max(bestMiss, rate(N, process.hrtime.bigint() - t0));

    const HITS = 1_000_000;
    t0 = process.hrtime.bigint();
    for (let h = 0; h < HITS; h++) authn.authenticate(tokens[h % N]!, now);
    bestHit = Math.max(bestHit, rate(HITS, process.hrtime.bigint() - t0));
    authn.close();
  }
  console.log(
    `${alg.padEnd(8)}${String(bestRaw).padStart(17)}${String(bestMiss).padStart(22)}${(bestMiss / bestRaw).toFixed(2).padStart(8)}${String(bestHit).padStart(14)}`,
  );
}
