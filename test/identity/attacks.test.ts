import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Authenticator } from '../../src/identity/types.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { attackCorpus, jwksOf, makeKey, tokenFactory, type AttackCase } from '../helpers/tokens.js';
import { auth, harness, request } from './setup.js';

const MAX_BYTES = 4096;
const rsa = makeKey('RS256', 'rsa-1');
const rsaNoAlg = makeKey('RS256', 'rsa-noalg', { jwkAlg: false });
const ec = makeKey('ES256', 'ec-1');
const attacker = makeKey('RS256', 'attacker-1');

let idp: JwksServer;
let evil: JwksServer;
let cases: AttackCase[];
const authns: { name: string; authn: Authenticator }[] = [];

beforeAll(async () => {
  idp = await startJwksServer({ jwks: jwksOf(rsa, rsaNoAlg, ec) });
  evil = await startJwksServer({ jwks: jwksOf(attacker) });
  process.env.ZT_TEST_HS256_SECRET = 'a-real-hs256-secret-of-at-least-32-bytes!';
  const common = { max_token_bytes: MAX_BYTES };
  const keys = { jwks_uri: idp.jwksUri, unknown_kid_cooldown_s: 30, unknown_kid_wait_ms: 500 };
  // Two issuer setups: one that also accepts HS256 with a real secret (so HMAC key-confusion
  // reaches the HMAC check) and one with the default asymmetric list.
  const withHs = harness({ ...common, issuers: [{ issuer: idp.issuer, audiences: ['api'], algorithms: ['RS256', 'ES256', 'HS256'], keys: { ...keys, hs256_secret_env: 'ZT_TEST_HS256_SECRET' } }] });
  const strict = harness({ ...common, issuers: [{ issuer: idp.issuer, audiences: ['api'], algorithms: ['RS256', 'ES256'], keys }] });
  for (const [name, h] of [['RS256+ES256+HS256(secret)', withHs], ['RS256+ES256', strict]] as const) {
    await h.authn.start();
    authns.push({ name, authn: h.authn });
  }
  cases = attackCorpus({ f: tokenFactory(idp.issuer, 'api'), rsa, ec, rsaNoAlg, attacker, attackerOrigin: evil.origin, maxTokenBytes: MAX_BYTES });
});

afterAll(async () => {
  for (const { authn } of authns) authn.close();
  await idp?.close();
  await evil?.close();
});

describe('attack corpus', () => {
  it('the setup accepts genuine RS256 and ES256 tokens, so denials below are not a broken setup', async () => {
    const f = tokenFactory(idp.issuer, 'api');
    for (const { authn } of authns) {
      expect(await auth(authn, f.mint({ key: rsa }))).toMatchObject({ ok: true });
      expect(await auth(authn, f.mint({ key: ec }))).toMatchObject({ ok: true });
      expect(authn.extractToken(request({ authorization: `bearer ${f.mint({ key: rsa })}` })).kind).toBe('token');
    }
  });

  it('has a broad corpus', () => {
    expect(cases.length).toBeGreaterThan(60);
  });

  it('denies every attack with its specific reason, on both issuer setups', async () => {
    const failures: string[] = [];
    for (const { name: setup, authn } of authns) {
      for (const c of cases) {
        let got: string;
        if (c.authorization !== undefined) {
          const x = authn.extractToken(request({ authorization: c.authorization }));
          got = x.kind === 'malformed' ? 'token_malformed' : x.kind === 'token' ? `extracted:${JSON.stringify((await auth(authn, x.token)).ok)}` : 'none';
        } else {
          const r = await auth(authn, c.token!);
          got = r.ok ? 'ALLOWED' : r.reason;
          if (!r.ok && c.detail && !c.detail.test(r.detail)) got += ` (detail: ${r.detail})`;
        }
        if (got !== c.reason) failures.push(`[${setup}] ${c.name}: expected ${c.reason}, got ${got}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('never contacts a URL named in a token header (jku, x5u)', () => {
    expect(evil.count()).toBe(0);
  });

  it('an attack token stays denied when repeated (no cache poisoning)', async () => {
    const tampered = cases.find((c) => c.name.startsWith('tampered payload'))!;
    for (const { authn } of authns) {
      for (let i = 0; i < 3; i++) expect(await auth(authn, tampered.token!)).toMatchObject({ ok: false, reason: 'token_invalid' });
    }
  });
});
