import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Authenticator } from '../../src/identity/types.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { IDP_SHAPES, jwksOf, makeKey, tokenFactory, type TokenFactory } from '../helpers/tokens.js';
import { auth, harness } from './setup.js';

const NOW_S = 1_900_000_000;
const NOW_MS = NOW_S * 1000;
const key = makeKey('ES256', 'es');

let idp: JwksServer;
let authn: Authenticator;
let f: TokenFactory;

beforeAll(async () => {
  idp = await startJwksServer({ jwks: jwksOf(key) });
  ({ authn } = harness({
    issuers: [
      {
        issuer: idp.issuer,
        audiences: ['shop-api'],
        algorithms: ['ES256'],
        keys: { jwks_uri: idp.jwksUri },
        claims: { subject: 'sub', roles: ['realm_access.roles', ['resource_access', 'shop-api', 'roles'], 'role'], scopes: 'scope' },
      },
    ],
  }));
  await authn.start();
  f = tokenFactory(idp.issuer, 'shop-api', () => NOW_S);
});

afterAll(async () => {
  authn.close();
  await idp.close();
});

const identityOf = async (claims: Record<string, unknown>) => {
  const r = await auth(authn, f.mint({ key, claims }), NOW_MS);
  if (!r.ok) throw new Error(r.detail);
  return r.identity;
};

describe('issuer claims mapping (resolved once per verified token)', () => {
  it('merges every roles path in order without duplicates; a string claim is one role; other values add nothing', async () => {
    const id = await identityOf(IDP_SHAPES.keycloak({ role: 'solo', realm_access: { roles: ['offline_access', 'orders-admin', 7] } }));
    expect(id.roles).toEqual(['offline_access', 'orders-admin', 'solo']);
    expect(Object.isFrozen(id.roles)).toBe(true);
    expect((await identityOf({ realm_access: 'not-an-object', resource_access: { 'shop-api': { roles: { a: 1 } } } })).roles).toEqual([]);
  });

  it('splits a space-separated scope string and keeps an array of strings', async () => {
    expect((await identityOf({ scope: ' openid  orders:read ' })).scopes).toEqual(['openid', 'orders:read']);
    expect((await identityOf({ scope: ['a', 1, 'b'] })).scopes).toEqual(['a', 'b']);
    expect((await identityOf({ scope: 42 })).scopes).toEqual([]);
  });

  it('a cache hit returns the same identity object: nothing is resolved again per check', async () => {
    const token = f.mint({ key, claims: IDP_SHAPES.keycloak() });
    const a = await auth(authn, token, NOW_MS);
    const b = await auth(authn, token, NOW_MS);
    expect(a.ok && b.ok && a.identity === b.identity).toBe(true);
  });
});

describe('claims.subject', () => {
  it('takes the user id from the configured claim (the Flask guides use public_id) and requires a non-empty string', async () => {
    const h = harness({
      issuers: [{ issuer: idp.issuer, audiences: ['shop-api'], algorithms: ['ES256'], keys: { jwks_uri: idp.jwksUri }, claims: { subject: 'public_id' } }],
    });
    await h.authn.start();
    try {
      const ok = await auth(h.authn, f.mint({ key, claims: { public_id: 'c2f5e0b6', sub: undefined } }), NOW_MS);
      expect(ok).toMatchObject({ ok: true, identity: { sub: 'c2f5e0b6' } });
      const bad = await auth(h.authn, f.mint({ key, claims: { public_id: 12 } }), NOW_MS);
      expect(bad).toMatchObject({ ok: false, reason: 'token_invalid', detail: 'public_id (the subject claim) missing or not a non-empty string' });
    } finally {
      h.authn.close();
    }
  });
});
