import { describe, expect, it } from 'vitest';
import { DEV_AUDIENCE, DEV_ISSUER } from '../../src/dev/keys.js';
import { signDevToken } from '../../src/identity/index.js';
import { makeKey, tokenFactory } from '../helpers/tokens.js';
import { auth, harness, request } from './setup.js';

const jwks = (issuer: string) => ({ issuer, audiences: ['api'], keys: { jwks_uri: 'http://127.0.0.1:9/jwks.json' } });

describe('development keys', () => {
  it('verifies dev tokens (RS256 and ES256) without start() and warns loudly', async () => {
    const { authn, warnings } = harness({ development_keys: true });
    try {
      expect(authn.ready()).toBe(true);
      expect(warnings.some((w) => w.startsWith('warn') && w.includes('DEVELOPMENT keys are active'))).toBe(true);
      for (const alg of ['RS256', 'ES256'] as const) {
        const token = await signDevToken({ sub: `dev-${alg}`, ttlS: 600, alg, claims: { roles: ['admin'] } });
        const r = await auth(authn, token);
        expect(r).toMatchObject({ ok: true, identity: { issuer: DEV_ISSUER, sub: `dev-${alg}`, claims: { aud: DEV_AUDIENCE, roles: ['admin'] } } });
      }
      const wrongAud = await signDevToken({ sub: 'x', ttlS: 600, claims: { aud: 'elsewhere' } });
      expect(await auth(authn, wrongAud)).toMatchObject({ ok: false, reason: 'audience_mismatch' });
      const badKid = await signDevToken({ sub: 'x', ttlS: 600, kid: 'no-such-kid' });
      expect(await auth(authn, badKid)).toMatchObject({ ok: false, reason: 'token_invalid' });
    } finally {
      authn.close();
    }
  });

  it('refuses development keys together with configured issuers', () => {
    expect(() => harness({ development_keys: true, issuers: [jwks('https://idp.example')] })).toThrow(/development_keys cannot be combined/);
  });
});

describe('configuration errors fail at construction', () => {
  it.each([
    ['HS256 without a secret', { issuers: [{ ...jwks('https://a'), algorithms: ['RS256', 'HS256'] }] }, /HS256 is allowed only with keys.hs256_secret_env/],
    ['secret env not set', { issuers: [{ issuer: 'https://a', audiences: ['api'], algorithms: ['HS256'], keys: { hs256_secret_env: 'ZT_TEST_UNSET_VAR' } }] }, /ZT_TEST_UNSET_VAR.*not set/],
    ['two key sources', { issuers: [{ ...jwks('https://a'), keys: { jwks_uri: 'http://127.0.0.1:9/j', discovery: true } }] }, /only one of/],
    ['no key source', { issuers: [{ issuer: 'https://a', audiences: ['api'], keys: {} }] }, /configure keys/],
    ['an issuer twice', { issuers: [jwks('https://a'), jwks('https://a')] }, /configured twice/],
  ])('%s', (_name, cfg, message) => {
    expect(() => harness(cfg)).toThrow(message);
  });

  it('refuses an HS256 secret shorter than 32 bytes', () => {
    process.env.ZT_TEST_SHORT_SECRET = 'short';
    expect(() => harness({ issuers: [{ issuer: 'https://a', audiences: ['api'], algorithms: ['HS256'], keys: { hs256_secret_env: 'ZT_TEST_SHORT_SECRET' } }] })).toThrow(/at least 32 bytes/);
  });
});

describe('HS256 with an explicitly configured secret', () => {
  it('accepts tokens signed with the secret and nothing else', async () => {
    process.env.ZT_TEST_HS_OK = 'x'.repeat(40);
    const { authn } = harness({ issuers: [{ issuer: 'https://hs.example', audiences: ['api'], algorithms: ['HS256'], keys: { hs256_secret_env: 'ZT_TEST_HS_OK' } }] });
    await authn.start();
    const f = tokenFactory('https://hs.example', 'api');
    const key = makeKey('EdDSA', 'unused');
    expect(await auth(authn, f.mint({ key, header: { alg: 'HS256', kid: undefined }, signWith: { alg: 'HS256', key: Buffer.from('x'.repeat(40)) } }))).toMatchObject({ ok: true });
    expect(await auth(authn, f.mint({ key, header: { alg: 'HS256' }, signWith: { alg: 'HS256', key: Buffer.from('y'.repeat(40)) } }))).toMatchObject({ ok: false, reason: 'token_invalid' });
    // An asymmetric token for an HS256-only issuer is not allowed.
    expect(await auth(authn, f.mint({ key }))).toMatchObject({ ok: false, reason: 'token_invalid' });
    authn.close();
  });
});

describe('token extraction', () => {
  const two = {
    issuers: [
      { ...jwks('https://a'), token_header: 'x-user-token', token_scheme: '' },
      { ...jwks('https://b') },
      { ...jwks('https://c'), token_header: 'x-api-jwt', token_scheme: 'JWT' },
    ],
  };
  const { authn } = harness(two);

  it('reads the configured header and scheme, returning the first one present', () => {
    expect(authn.extractToken(request({ 'x-user-token': 'aaa.bbb.ccc', authorization: 'Bearer ddd.eee.fff' }))).toEqual({ kind: 'token', token: 'aaa.bbb.ccc' });
    expect(authn.extractToken(request({ authorization: 'Bearer ddd.eee.fff' }))).toEqual({ kind: 'token', token: 'ddd.eee.fff' });
    expect(authn.extractToken(request({ authorization: 'bEaReR ddd.eee.fff' }))).toEqual({ kind: 'token', token: 'ddd.eee.fff' });
    expect(authn.extractToken(request({ 'x-api-jwt': 'jwt ggg.hhh.iii' }))).toEqual({ kind: 'token', token: 'ggg.hhh.iii' });
  });

  it('treats another scheme or no header as no token', () => {
    expect(authn.extractToken(request({}))).toEqual({ kind: 'none' });
    expect(authn.extractToken(request({ authorization: 'Basic YWxpY2U6cHc=' }))).toEqual({ kind: 'none' });
    expect(authn.extractToken(request({ authorization: 'BearerX abc' }))).toEqual({ kind: 'none' });
  });

  it('calls ambiguous headers malformed', () => {
    expect(authn.extractToken(request({ 'x-user-token': 'a.b.c,d.e.f' })).kind).toBe('malformed');
    expect(authn.extractToken(request({ 'x-user-token': 'a.b.c d' })).kind).toBe('malformed');
    expect(authn.extractToken(request({ authorization: 'Bearer  a.b.c' })).kind).toBe('malformed');
  });
});
