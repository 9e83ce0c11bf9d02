import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KEYS_UNAVAILABLE } from '../../src/identity/index.js';
import type { Authenticator } from '../../src/identity/types.js';
import { startJwksServer } from '../helpers/jwks-server.js';
import { b64url, jwksOf, makeKey, tokenFactory } from '../helpers/tokens.js';
import { auth, counter, harness, sleep, until, type Harness } from './setup.js';

const k1 = makeKey('RS256', 'k1');
const k2 = makeKey('RS256', 'k2');
const ec = makeKey('ES256', 'ec');

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(opts: { jwks?: unknown; keys?: Record<string, unknown>; startFault?: 'status500' | 'hang' | 'malformed'; discovery?: boolean; issuerPath?: string; discoveryIssuer?: string } = {}) {
  const idp = await startJwksServer({ jwks: opts.jwks ?? jwksOf(k1), issuerPath: opts.issuerPath, discoveryIssuer: opts.discoveryIssuer });
  cleanups.push(() => idp.close());
  if (opts.startFault) idp.setFault(opts.startFault);
  const source = opts.discovery ? { discovery: true } : { jwks_uri: idp.jwksUri };
  const h: Harness = harness({
    issuers: [{ issuer: idp.issuer, audiences: ['api'], algorithms: ['RS256', 'ES256'], keys: { ...source, unknown_kid_cooldown_s: 30, unknown_kid_wait_ms: 1000, fetch_timeout_ms: 1000, ...opts.keys } }],
  });
  cleanups.push(() => h.authn.close());
  const f = tokenFactory(idp.issuer, 'api');
  return { idp, ...h, f };
}

const denyDetail = async (authn: Authenticator, token: string) => {
  const r = await auth(authn, token);
  return r.ok ? 'ALLOWED' : `${r.reason}: ${r.detail}`;
};

describe('key rotation and unknown kids', () => {
  it('refetches on an unknown kid and accepts a key added by rotation', async () => {
    const { idp, authn, f } = await setup();
    await authn.start();
    expect(authn.ready()).toBe(true);
    idp.setJwks(jwksOf(k1, k2));
    const pending = authn.authenticate(f.mint({ key: k2 }), Date.now());
    expect(pending).toBeInstanceOf(Promise);
    expect(await pending).toMatchObject({ ok: true });
    expect(idp.count('/jwks.json')).toBe(2);
    // Known kids never wait.
    expect(authn.authenticate(f.mint({ key: k1, claims: { sub: 'x' } }), Date.now())).toMatchObject({ ok: true });
  });

  it('a flood of unknown kids causes at most one fetch per cooldown, concurrent misses share it', async () => {
    const { idp, authn, f } = await setup({ keys: { unknown_kid_cooldown_s: 1, unknown_kid_wait_ms: 2000 } });
    await authn.start();
    idp.resetCounts();
    // Signed once; only the kid varies (the signature is never reached for an unknown kid).
    const [, p, s] = f.mint({ key: makeKey('EdDSA', 'x') }).split('.');
    const withKid = (kid: string) => `${b64url({ alg: 'RS256', kid })}.${p}.${s}`;
    const flood = Array.from({ length: 200 }, (_, i) => withKid(`random-${i}`));
    const results = await Promise.all(flood.map((t) => authn.authenticate(t, Date.now())));
    expect(results.every((r) => !r.ok && r.reason === 'token_invalid')).toBe(true);
    expect(idp.count('/jwks.json')).toBe(1);
    // More unknown kids inside the cooldown: denied at once, no fetch.
    for (let i = 0; i < 50; i++) {
      const r = authn.authenticate(withKid(`again-${i}`), Date.now());
      expect(r).not.toBeInstanceOf(Promise);
      expect(r).toMatchObject({ ok: false, reason: 'token_invalid', detail: expect.stringContaining('cooling down') });
    }
    expect(idp.count('/jwks.json')).toBe(1);
    await sleep(1100);
    await Promise.all(Array.from({ length: 50 }, (_, i) => authn.authenticate(withKid(`later-${i}`), Date.now())));
    expect(idp.count('/jwks.json')).toBe(2);
  });

  it('drops cached tokens whose key left the JWKS', async () => {
    const { idp, authn, f } = await setup({ jwks: jwksOf(k1, k2) });
    await authn.start();
    const old = f.mint({ key: k1 });
    expect(authn.authenticate(old, Date.now())).toMatchObject({ ok: true });
    expect(authn.authenticate(old, Date.now())).toMatchObject({ ok: true }); // cached
    idp.setJwks(jwksOf(k2, ec));
    // A token of the new key set makes the authenticator refetch (unknown kid ec).
    expect(await auth(authn, f.mint({ key: ec }))).toMatchObject({ ok: true });
    expect(await denyDetail(authn, old)).toMatch(/^token_invalid: kid not in the JWKS/);
    // Keys still present keep their records: their cached tokens survive the refresh.
    const kept = f.mint({ key: k2, claims: { sub: 'kept' } });
    expect(authn.authenticate(kept, Date.now())).toMatchObject({ ok: true });
  });

  it('a refresh that swaps a kid to new key material retires the old key', async () => {
    const { idp, authn, f } = await setup({ keys: { refresh_interval_s: 0.1 } });
    await authn.start();
    const token = f.mint({ key: k1 });
    expect(authn.authenticate(token, Date.now())).toMatchObject({ ok: true });
    const impostor = makeKey('RS256', 'k1');
    idp.setJwks(jwksOf(impostor));
    await until(async () => (await auth(authn, token)).ok === false, 5000, 'old k1 token denied');
    expect(await denyDetail(authn, token)).toBe('token_invalid: signature verification failed');
  });
});

describe('JWKS faults', () => {
  it('keeps serving the last good keys while the JWKS answers 500', async () => {
    // While failing, retries keep to the cooldown: a short one, so that several come within the wait.
    const { idp, authn, f, metrics, warnings } = await setup({ keys: { refresh_interval_s: 0.1, unknown_kid_cooldown_s: 0.2 } });
    await authn.start();
    idp.setFault('status500');
    await until(async () => (await counter(metrics, 'jwksRefreshes', { outcome: 'error' })) >= 2, 5000, 'failed refreshes');
    expect(authn.ready()).toBe(true);
    expect(await auth(authn, f.mint({ key: k1, claims: { sub: 'fresh-token' } }))).toMatchObject({ ok: true });
    expect(warnings.some((w) => w.startsWith('warn') && w.includes('last good keys') && w.includes('HTTP 500'))).toBe(true);
  });

  it('down at start: start resolves, ready() is false, tokens are denied, and it recovers in the background', async () => {
    const { idp, authn, f } = await setup({ startFault: 'status500', keys: { unknown_kid_cooldown_s: 60 } });
    await authn.start();
    expect(authn.ready()).toBe(false);
    const r = await auth(authn, f.mint({ key: k1 }));
    expect(r).toMatchObject({ ok: false, reason: 'token_invalid', fault: 'keys_unavailable' });
    if (!r.ok) expect(r.detail.startsWith(KEYS_UNAVAILABLE)).toBe(true);
    idp.setFault('none');
    await until(() => authn.ready(), 8000, 'background retry');
    expect(await auth(authn, f.mint({ key: k1 }))).toMatchObject({ ok: true });
  });

  it('a hanging endpoint: start gives up after fetch_timeout_ms; authenticate waits at most unknown_kid_wait_ms', async () => {
    const { idp, authn, f, warnings } = await setup({ startFault: 'hang', keys: { fetch_timeout_ms: 300, unknown_kid_wait_ms: 50, unknown_kid_cooldown_s: 0 } });
    const t0 = Date.now();
    await authn.start();
    // Bounded by the fetch timeout, not by the server (which never answers).
    expect(Date.now() - t0).toBeLessThan(300 + 2000);
    expect(authn.ready()).toBe(false);
    expect(warnings.some((w) => w.includes('timed out after 300 ms'))).toBe(true);
    const t1 = Date.now();
    const r = await auth(authn, f.mint({ key: k1 }));
    expect(Date.now() - t1).toBeLessThan(50 + 1000);
    expect(r).toMatchObject({ ok: false, reason: 'token_invalid', fault: 'keys_unavailable' });
    if (!r.ok) expect(r.detail).toMatch(new RegExp(`^${KEYS_UNAVAILABLE}.*(still running after 50 ms|after refetch)`));
    expect(idp.count('/jwks.json')).toBeGreaterThanOrEqual(1);
  });

  it('a hanging endpoint after warm-up: known kids are unaffected, unknown kids wait at most unknown_kid_wait_ms', async () => {
    const { idp, authn, f } = await setup({ keys: { fetch_timeout_ms: 2000, unknown_kid_wait_ms: 50 } });
    await authn.start();
    idp.setFault('hang');
    const r = await auth(authn, f.mint({ key: k2 }));
    expect(r).toMatchObject({ ok: false, reason: 'token_invalid', detail: 'kid not in the JWKS (refetch still running after 50 ms)' });
    expect(authn.authenticate(f.mint({ key: k1 }), Date.now())).toMatchObject({ ok: true });
  });

  it('malformed JSON: not ready at start; after warm-up the old keys keep serving', async () => {
    const { idp, authn, f, metrics, warnings } = await setup({ startFault: 'malformed', keys: { unknown_kid_cooldown_s: 0 } });
    await authn.start();
    expect(authn.ready()).toBe(false);
    expect(warnings.some((w) => w.includes('body is not JSON'))).toBe(true);
    idp.setFault('none');
    await until(() => authn.ready(), 8000, 'recovery');
    idp.setFault('malformed');
    const errors0 = await counter(metrics, 'jwksRefreshes', { outcome: 'error' });
    expect(await auth(authn, f.mint({ key: k2 }))).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(await counter(metrics, 'jwksRefreshes', { outcome: 'error' })).toBe(errors0 + 1);
    expect(await auth(authn, f.mint({ key: k1 }))).toMatchObject({ ok: true });
  });

  it('a JWKS without any usable key is a failed refresh, not an empty key set', async () => {
    const { idp, authn, f } = await setup({ keys: { unknown_kid_cooldown_s: 0 } });
    await authn.start();
    idp.setJwks({ keys: [] });
    expect(await auth(authn, f.mint({ key: k2 }))).toMatchObject({ ok: false });
    expect(await auth(authn, f.mint({ key: k1 }))).toMatchObject({ ok: true });
  });
});

describe('OIDC discovery and files', () => {
  it('discovers jwks_uri from the issuer and verifies its tokens', async () => {
    const { idp, authn, f } = await setup({ discovery: true, issuerPath: '/realms/test' });
    await authn.start();
    expect(authn.ready()).toBe(true);
    expect(idp.count('/realms/test/.well-known/openid-configuration')).toBe(1);
    expect(await auth(authn, f.mint({ key: k1 }))).toMatchObject({ ok: true });
    // An unknown-kid refetch reuses the discovered jwks_uri: one request, not two.
    idp.setJwks(jwksOf(k1, k2));
    expect(await auth(authn, f.mint({ key: k2 }))).toMatchObject({ ok: true });
    expect(idp.count('/realms/test/.well-known/openid-configuration')).toBe(1);
    expect(idp.count('/jwks.json')).toBe(2);
  });

  it('refuses a discovery document that names another issuer', async () => {
    const { authn, warnings } = await setup({ discovery: true, discoveryIssuer: 'https://evil.example' });
    await authn.start();
    expect(authn.ready()).toBe(false);
    expect(warnings.some((w) => w.includes('names issuer \\"https://evil.example'))).toBe(true);
  });

  it('loads keys from a JWKS file and re-reads it on an unknown kid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zt-jwks-'));
    const file = join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify(jwksOf(k1)));
    const h = harness({ issuers: [{ issuer: 'https://file.example', audiences: ['api'], keys: { jwks_file: file, unknown_kid_cooldown_s: 0 } }] });
    cleanups.push(() => h.authn.close());
    await h.authn.start();
    const f = tokenFactory('https://file.example', 'api');
    expect(await auth(h.authn, f.mint({ key: k1 }))).toMatchObject({ ok: true });
    writeFileSync(file, JSON.stringify(jwksOf(k1, k2)));
    expect(await auth(h.authn, f.mint({ key: k2 }))).toMatchObject({ ok: true });
  });
});

describe('bad keys in a JWKS', () => {
  it('rejects weak or ambiguous keys with a logged reason and keeps the good ones', async () => {
    const weak = makeKey('RS256', 'rsa-1024', { rsaBits: 1024 });
    const good = makeKey('RS256', 'good');
    const eOne = makeKey('RS256', 'e-one');
    const eEven = makeKey('RS256', 'e-even');
    const dupA = makeKey('RS256', 'dup');
    const dupB = makeKey('RS256', 'dup');
    const enc = makeKey('RS256', 'enc');
    const rs512 = makeKey('RS256', 'rs512');
    const jwks = {
      keys: [
        weak.jwk,
        good.jwk,
        { ...eOne.jwk, e: 'AQ' },
        { ...eEven.jwk, e: 'AQAC' },
        dupA.jwk,
        dupB.jwk,
        { ...enc.jwk, use: 'enc' },
        { ...rs512.jwk, alg: 'RS512' },
        { kty: 'oct', kid: 'hmac', k: 'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0' },
        { kty: 'RSA', kid: 42, n: good.jwk.n, e: 'AQAB' },
        { ...good.jwk, kid: 'good-2', d: 'private-material-means-misconfigured' },
      ],
    };
    const { authn, f, warnings, metrics } = await setup({ jwks, keys: { unknown_kid_cooldown_s: 60 } });
    await authn.start();
    const rejected = warnings.filter((w) => w.includes('JWKS key rejected')).join('\n');
    expect(rejected).toMatch(/rsa-1024.*1024 bits is below 2048/);
    expect(rejected).toMatch(/e-one.*exponent 1 is not an odd value/);
    expect(rejected).toMatch(/e-even.*exponent 65538 is not an odd value/);
    expect(rejected).toMatch(/dup.*duplicate kid/);
    expect(rejected).toMatch(/enc.*use \\"enc\\" is not \\"sig\\"/);
    expect(rejected).toMatch(/rs512.*alg \\"RS512\\" is not allowed/);
    expect(rejected).toMatch(/hmac.*symmetric/);
    expect(rejected).toMatch(/kid is not a string/);
    // A JWK with private members means the IdP published its secret: that key is not used.
    expect(rejected).toMatch(/good-2.*private key material \(d\)/);
    for (const key of [weak, dupA, dupB, enc]) {
      expect(await auth(authn, f.mint({ key }))).toMatchObject({ ok: false, reason: 'token_invalid' });
    }
    expect(await auth(authn, f.mint({ key: good }))).toMatchObject({ ok: true });
    expect(await auth(authn, f.mint({ key: good, header: { kid: 'good-2' } }))).toMatchObject({ ok: false, reason: 'token_invalid' });
    const gauge = (await metrics.jwksKeys.get()).values[0]?.value;
    expect(gauge).toBe(1);
  });
});
