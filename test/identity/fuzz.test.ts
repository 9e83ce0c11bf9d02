import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Authenticator } from '../../src/identity/types.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { jwksOf, makeKey, tokenFactory } from '../helpers/tokens.js';
import { harness, request } from './setup.js';

const rs = makeKey('RS256', 'rs');
const es = makeKey('ES256', 'es');
let idp: JwksServer;
let authn: Authenticator;
let tokens: string[];

beforeAll(async () => {
  idp = await startJwksServer({ jwks: jwksOf(rs, es) });
  // A long cooldown: mutated kids must not turn the fuzz into a JWKS load test.
  ({ authn } = harness({ issuers: [{ issuer: idp.issuer, audiences: ['api'], algorithms: ['RS256', 'ES256'], keys: { jwks_uri: idp.jwksUri, unknown_kid_cooldown_s: 600, unknown_kid_wait_ms: 200 } }] }));
  await authn.start();
  const f = tokenFactory(idp.issuer, 'api');
  tokens = [f.mint({ key: rs }), f.mint({ key: es })];
});

afterAll(async () => {
  authn.close();
  await idp.close();
});

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

describe('fuzz', () => {
  it('every single-character change of a valid token is denied (and nothing throws)', async () => {
    for (const t of tokens) expect(await authn.authenticate(t, Date.now())).toMatchObject({ ok: true });
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.nat(), fc.constantFrom(...`${B64URL}.= +/\n`), fc.nat(1), async (pos, which, ch, tok) => {
        const t = tokens[tok]!;
        const i = pos % t.length;
        fc.pre(t[i] !== ch);
        const mutated = which % 3 === 0 ? t.slice(0, i) + ch + t.slice(i + 1) : which % 3 === 1 ? t.slice(0, i) + t.slice(i + 1) : t.slice(0, i) + ch + t.slice(i);
        const r = await authn.authenticate(mutated, Date.now());
        expect(r.ok).toBe(false);
      }),
      { numRuns: 400 },
    );
  });

  it('arbitrary strings and headers never throw and never authenticate', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), async (s) => {
        const r = await authn.authenticate(s, Date.now());
        expect(r.ok).toBe(false);
        const x = authn.extractToken(request({ authorization: s }));
        expect(['none', 'token', 'malformed']).toContain(x.kind);
      }),
      { numRuns: 400 },
    );
  });
});
