import { createPrivateKey, createPublicKey, generateKeyPairSync, verify, type JsonWebKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { hasRocaFingerprint } from '../../src/identity/roca.js';
import { startJwksServer } from '../helpers/jwks-server.js';
import { jwksOf, makeKey, tokenFactory, type TestKey } from '../helpers/tokens.js';
import { auth, harness } from './setup.js';

/**
 * What a JWKS may contain, and what a token's header must say, beyond signature and claims:
 * ROCA-vulnerable RSA moduli and JWKs with private members are never used; an issuer that
 * configures `typ` (RFC 8725 explicit typing) gets only tokens of that type.
 */
const fixture = JSON.parse(readFileSync(new URL('./fixtures/wycheproof-roca-jwk.json', import.meta.url), 'utf8')) as { private: JsonWebKey; public: JsonWebKey };
const roca: TestKey = {
  kid: 'kid-rsa-roca-sign',
  alg: 'RS256',
  privateKey: createPrivateKey({ key: fixture.private, format: 'jwk' }),
  publicKey: createPublicKey({ key: fixture.public, format: 'jwk' }),
  jwk: fixture.public,
};
const good = makeKey('RS256', 'good');

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(jwks: unknown, issuerExtra: Record<string, unknown> = {}) {
  const idp = await startJwksServer({ jwks });
  cleanups.push(() => idp.close());
  const h = harness({
    issuers: [{ issuer: idp.issuer, audiences: ['api'], algorithms: ['RS256', 'ES256'], keys: { jwks_uri: idp.jwksUri, unknown_kid_cooldown_s: 60, unknown_kid_wait_ms: 1000 }, ...issuerExtra }],
  });
  cleanups.push(() => h.authn.close());
  await h.authn.start();
  return { idp, ...h, f: tokenFactory(idp.issuer, 'api') };
}

describe('ROCA (CVE-2017-15361) keys', () => {
  it('the Wycheproof json_web_key_test tc 7 key is refused, with a logged reason; a good key beside it serves', async () => {
    const { authn, f, warnings } = await setup(jwksOf(roca, good));
    const token = f.mint({ key: roca });
    // The token's signature is valid for that public key: only the key check stands in the way.
    const [h, p, s] = token.split('.') as [string, string, string];
    expect(verify('sha256', Buffer.from(`${h}.${p}`), roca.publicKey, Buffer.from(s, 'base64url'))).toBe(true);
    expect(await auth(authn, token)).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(warnings.some((w) => w.includes('JWKS key rejected') && w.includes('kid-rsa-roca-sign') && w.includes('ROCA'))).toBe(true);
    expect(await auth(authn, f.mint({ key: good }))).toMatchObject({ ok: true });
  });

  it('the fingerprint test flags the tc 7 modulus and none of a batch of freshly generated moduli', () => {
    expect(hasRocaFingerprint(Buffer.from(fixture.public.n!, 'base64url'))).toBe(true);
    for (let i = 0; i < 6; i++) {
      const bits = i === 0 ? 3072 : 2048;
      const n = generateKeyPairSync('rsa', { modulusLength: bits }).publicKey.export({ format: 'jwk' }).n!;
      expect(hasRocaFingerprint(Buffer.from(n, 'base64url')), `a random ${bits}-bit modulus`).toBe(false);
    }
  });
});

describe('JWKs with private members', () => {
  it.each(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'])('a key publishing %s is dropped with a warning, its tokens denied', async (member) => {
    const leaked = makeKey('RS256', 'leaked');
    const { authn, f, warnings } = await setup({ keys: [{ ...leaked.jwk, [member]: 'AQAB' }, good.jwk] });
    expect(warnings.some((w) => w.startsWith('warn') && w.includes('leaked') && w.includes(`private key material (${member})`))).toBe(true);
    expect(await auth(authn, f.mint({ key: leaked }))).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(await auth(authn, f.mint({ key: good }))).toMatchObject({ ok: true });
  });

  it('a full private RSA JWK (the Wycheproof private key set) is dropped, not reduced to its public part', async () => {
    const { authn, f, warnings } = await setup({ keys: [{ ...fixture.private, kid: 'priv' }, good.jwk] });
    expect(warnings.some((w) => /kid \\"priv\\": publishes private key material \(d, p, q, dp, dq, qi\)/.test(w))).toBe(true);
    expect(await auth(authn, f.mint({ key: { ...roca, kid: 'priv' } }))).toMatchObject({ ok: false, reason: 'token_invalid' });
  });
});

describe('explicit typing (RFC 8725 §3.11, RFC 9068)', () => {
  it('with typ [at+jwt]: at+jwt in any case, with or without application/, passes; JWT, other types, missing or non-string typ are denied', async () => {
    const { authn, f } = await setup(jwksOf(good), { typ: ['at+jwt'] });
    for (const typ of ['at+jwt', 'AT+JWT', 'application/at+jwt', 'Application/AT+JWT']) {
      expect(await auth(authn, f.mint({ key: good, header: { typ } })), typ).toMatchObject({ ok: true });
    }
    const cases: [unknown, RegExp][] = [
      ['JWT', /typ "JWT"; this issuer requires at\+jwt/],
      ['logout+jwt', /typ "logout\+jwt"/],
      ['application/jwt', /typ "application\/jwt"/],
      [undefined, /typ missing/],
      [42, /typ 42/],
      [['at+jwt'], /typ \["at\+jwt"\]/],
    ];
    for (const [typ, detail] of cases) {
      const r = await auth(authn, f.mint({ key: good, header: { typ } }));
      expect(r, String(typ)).toMatchObject({ ok: false, reason: 'token_invalid' });
      if (!r.ok) expect(r.detail).toMatch(detail);
    }
  });

  it('a configured application/at+jwt accepts at+jwt (the prefix may be left out on either side)', async () => {
    const { authn, f } = await setup(jwksOf(good), { typ: ['application/at+jwt'] });
    expect(await auth(authn, f.mint({ key: good, header: { typ: 'at+jwt' } }))).toMatchObject({ ok: true });
    expect(await auth(authn, f.mint({ key: good, header: { typ: 'JWT' } }))).toMatchObject({ ok: false, reason: 'token_invalid' });
  });

  it('without typ configured, typ is not checked: JWT, at+jwt and no typ all pass', async () => {
    const { authn, f } = await setup(jwksOf(good));
    for (const typ of ['JWT', 'at+jwt', undefined]) {
      expect(await auth(authn, f.mint({ key: good, header: { typ } })), String(typ)).toMatchObject({ ok: true });
    }
  });

  it('an empty typ list or max_stale_s not above refresh_interval_s is a config error', () => {
    expect(() => harness({ issuers: [{ issuer: 'https://idp', audiences: ['api'], keys: { jwks_uri: 'https://idp/jwks' }, typ: [] }] })).toThrow();
    expect(() => harness({ issuers: [{ issuer: 'https://idp', audiences: ['api'], keys: { jwks_uri: 'https://idp/jwks', refresh_interval_s: 600, max_stale_s: 300 } }] })).toThrow(/max_stale_s \(300\) must exceed keys.refresh_interval_s \(600\)/);
    expect(() => harness({ issuers: [{ issuer: 'https://idp', audiences: ['api'], keys: { jwks_uri: 'https://idp/jwks', refresh_interval_s: 0 } }] })).toThrow(/max_stale_s/);
    expect(() => harness({ issuers: [{ issuer: 'https://idp', audiences: ['api'], keys: { jwks_uri: 'https://idp/jwks', refresh_interval_s: 0, max_stale_s: 0 } }] })).not.toThrow();
  });
});
