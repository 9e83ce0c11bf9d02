import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Authenticator } from '../../src/identity/types.js';
import type { Metrics } from '../../src/observability/metrics.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { jwksOf, makeKey, tokenFactory, type TokenFactory } from '../helpers/tokens.js';
import { auth, counter, harness } from './setup.js';

const NOW_S = 1_900_000_000;
const NOW_MS = NOW_S * 1000;
const rs = makeKey('RS256', 'rs');
const ps = makeKey('PS256', 'ps');
const es = makeKey('ES256', 'es');
const ed = makeKey('EdDSA', 'ed');

let idp: JwksServer;
let authn: Authenticator;
let metrics: Metrics;
let f: TokenFactory;

beforeAll(async () => {
  idp = await startJwksServer({ jwks: jwksOf(rs, ps, es, ed) });
  ({ authn, metrics } = harness({
    clock_skew_s: 60,
    max_token_lifetime_s: 3600,
    issuers: [{ issuer: idp.issuer, audiences: ['api', 'admin-api'], algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'], keys: { jwks_uri: idp.jwksUri } }],
  }));
  await authn.start();
  f = tokenFactory(idp.issuer, 'api', () => NOW_S);
});

afterAll(async () => {
  authn.close();
  await idp.close();
});

describe('valid tokens', () => {
  it.each([rs, ps, es, ed])('accepts $alg and returns the identity', async (key) => {
    const r = await auth(authn, f.mint({ key, claims: { sub: `user-${key.alg}`, roles: ['a'] } }), NOW_MS);
    expect(r).toMatchObject({ ok: true, identity: { issuer: idp.issuer, sub: `user-${key.alg}`, exp: NOW_S + 600 } });
    if (r.ok) expect(r.identity.claims.roles).toEqual(['a']);
  });

  it('accepts an aud array that contains one of the audiences', async () => {
    expect(await auth(authn, f.mint({ key: rs, claims: { aud: ['other', 'admin-api'] } }), NOW_MS)).toMatchObject({ ok: true });
  });

  it('accepts a token without a kid when exactly one key fits its alg', async () => {
    expect(await auth(authn, f.mint({ key: ed, header: { kid: undefined } }), NOW_MS)).toMatchObject({ ok: true });
  });

  it('honours the clock skew on exp and nbf', async () => {
    expect(await auth(authn, f.mint({ key: rs, claims: { exp: NOW_S - 30 } }), NOW_MS)).toMatchObject({ ok: true });
    expect(await auth(authn, f.mint({ key: rs, claims: { nbf: NOW_S + 30, iat: NOW_S + 30 } }), NOW_MS)).toMatchObject({ ok: true });
  });

  it('returns a frozen identity, so no consumer can alter what the cache serves', async () => {
    const r = await auth(authn, f.mint({ key: rs, claims: { roles: ['x'] } }), NOW_MS);
    if (!r.ok) throw new Error(r.detail);
    expect(Object.isFrozen(r.identity.claims)).toBe(true);
    expect(Object.isFrozen(r.identity.claims.roles)).toBe(true);
  });
});

describe('claim failures', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['expired', { exp: NOW_S - 61, iat: NOW_S - 600 }, 'token_expired'],
    ['not yet valid (nbf)', { nbf: NOW_S + 120 }, 'token_not_yet_valid'],
    ['iat in the future', { iat: NOW_S + 120, exp: NOW_S + 600 }, 'token_not_yet_valid'],
    ['lifetime over the maximum (exp - iat)', { iat: NOW_S - 10, exp: NOW_S + 3600 }, 'token_lifetime_exceeded'],
    ['lifetime over the maximum without iat (exp - now)', { iat: undefined, exp: NOW_S + 7200 }, 'token_lifetime_exceeded'],
    ['exp 1e308', { exp: 1e308 }, 'token_lifetime_exceeded'],
    ['wrong iss', { iss: 'https://evil.example' }, 'issuer_unknown'],
    ['iss not a string', { iss: ['a'] }, 'token_invalid'],
    ['wrong aud', { aud: 'other' }, 'audience_mismatch'],
    ['aud missing', { aud: undefined }, 'audience_mismatch'],
    ['aud []', { aud: [] }, 'token_invalid'],
    ['mixed aud array', { aud: ['api', 42] }, 'token_invalid'],
    ['aud an object', { aud: { api: true } }, 'token_invalid'],
    ['no exp', { exp: undefined }, 'token_invalid'],
    ['exp as a string', { exp: String(NOW_S + 600) }, 'token_invalid'],
    ['exp null', { exp: null }, 'token_invalid'],
    ['nbf as a string', { nbf: String(NOW_S) }, 'token_invalid'],
    ['iat as a string', { iat: String(NOW_S) }, 'token_invalid'],
    ['missing sub', { sub: undefined }, 'token_invalid'],
    ['empty sub', { sub: '' }, 'token_invalid'],
    ['numeric sub', { sub: 42 }, 'token_invalid'],
  ];
  it.each(cases)('%s -> %s', async (_name, claims, reason) => {
    expect(await auth(authn, f.mint({ key: es, claims }), NOW_MS)).toMatchObject({ ok: false, reason });
  });

  it('checks iss against the issuer exactly (trailing slash is another issuer)', async () => {
    expect(await auth(authn, f.mint({ key: rs, claims: { iss: `${idp.issuer}/` } }), NOW_MS)).toMatchObject({ ok: false, reason: 'issuer_unknown' });
  });
});

describe('verified-token cache', () => {
  it('serves a repeat token from the cache and counts hits and misses', async () => {
    const token = f.mint({ key: rs, claims: { sub: 'cache-me' } });
    const hits0 = await counter(metrics, 'tokenCache', { result: 'hit' });
    const misses0 = await counter(metrics, 'tokenCache', { result: 'miss' });
    const first = authn.authenticate(token, NOW_MS);
    const second = authn.authenticate(token, NOW_MS + 1000);
    expect(first).toMatchObject({ ok: true });
    // Synchronous on a hit, and the very same frozen result.
    expect(second).toBe(first);
    expect((await counter(metrics, 'tokenCache', { result: 'hit' })) - hits0).toBe(1);
    expect((await counter(metrics, 'tokenCache', { result: 'miss' })) - misses0).toBe(1);
  });

  it('re-checks exp on a hit: a cached token is denied once it expires', async () => {
    const token = f.mint({ key: rs, claims: { exp: NOW_S + 100 } });
    expect(authn.authenticate(token, NOW_MS)).toMatchObject({ ok: true });
    expect(authn.authenticate(token, NOW_MS + 50_000)).toMatchObject({ ok: true });
    expect(authn.authenticate(token, NOW_MS + 161_000)).toMatchObject({ ok: false, reason: 'token_expired' });
  });

  it('re-checks nbf on a hit when the clock is earlier than at verification', async () => {
    const token = f.mint({ key: rs, claims: { nbf: NOW_S } });
    expect(authn.authenticate(token, NOW_MS)).toMatchObject({ ok: true });
    expect(authn.authenticate(token, NOW_MS - 120_000)).toMatchObject({ ok: false, reason: 'token_not_yet_valid' });
  });
});
