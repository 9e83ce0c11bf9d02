import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema/index.js';
import { checkRequest } from '../helpers/grpc.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/server.js';
import { jwksOf, makeKey, tokenFactory } from '../helpers/tokens.js';

/** Key lifecycle end to end: a real JWKS server over HTTP, the real sidecar over gRPC. */
const AUD = 'orders-api';
const key1 = makeKey('RS256', 'k1');
const key2 = makeKey('ES256', 'k2');

function config(jwks: JwksServer, keys: Record<string, unknown> = {}): ConfigInput {
  return {
    identity: {
      issuers: [{ issuer: jwks.issuer, audiences: [AUD], keys: { jwks_uri: jwks.jwksUri, fetch_timeout_ms: 300, unknown_kid_cooldown_s: 0.2, unknown_kid_wait_ms: 500, ...keys } }],
    },
    policy: {
      resources: { orders: { sensitivity: 'low', classification: 'public' } },
      routes: [{ prefix: '/', resource: 'orders' }],
    },
    state: { remediation: { enabled: false } },
  };
}

const claims = { allowed_resources: ['orders'] };
let jwks: JwksServer | undefined;
let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.stop();
  await jwks?.close();
  srv = undefined;
  jwks = undefined;
});

async function decide(token: string): Promise<string> {
  const res = await srv!.client.check(checkRequest({ token }));
  expect(res.rpcCode).toBe(0);
  return res.response!.status.message || 'allowed';
}

describe('JWKS over real HTTP, decisions over real gRPC', () => {
  it('an unknown kid triggers one refetch, and a rotation that adds the key is honoured', async () => {
    jwks = await startJwksServer({ jwks: jwksOf(key1) });
    srv = await startTestServer(config(jwks));
    const tf = tokenFactory(jwks.issuer, AUD);
    expect(await decide(tf.mint({ key: key1, claims }))).toBe('allowed');
    const rotated = tf.mint({ key: key2, claims });
    // Not yet published: denied after the refetch finds nothing.
    expect(await decide(rotated)).toBe('token_invalid');
    jwks.setJwks(jwksOf(key1, key2));
    await new Promise((r) => setTimeout(r, 250)); // past the unknown-kid cooldown
    expect(await decide(rotated)).toBe('allowed');
  });

  it('keeps serving the last good keys when the endpoint fails after warm-up', async () => {
    jwks = await startJwksServer({ jwks: jwksOf(key1) });
    srv = await startTestServer(config(jwks, { refresh_interval_s: 0.2 }));
    const tf = tokenFactory(jwks.issuer, AUD);
    expect(await decide(tf.mint({ key: key1, claims }))).toBe('allowed');
    for (const fault of ['status500', 'malformed', 'hang'] as const) {
      jwks.setFault(fault);
      const before = jwks.count('/jwks.json');
      await waitFor(() => jwks!.count('/jwks.json') > before, 5000, `a refresh attempt during ${fault}`);
      // A fresh token (not cached) still verifies against the last good keys.
      expect(await decide(tf.mint({ key: key1, claims: { ...claims, jti: fault } }))).toBe('allowed');
    }
    expect(srv.app.ready()).toBe(true);
  });

  it('is not ready and denies every check when the endpoint is down at start', async () => {
    jwks = await startJwksServer({ jwks: jwksOf(key1) });
    jwks.setFault('status500');
    srv = await startTestServer(config(jwks), { waitReady: false });
    await waitFor(() => jwks!.count('/jwks.json') > 0, 5000, 'the first fetch');
    expect(srv.app.ready()).toBe(false);
    const ready = await fetch(`${srv.httpUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await srv.client.health('')).toBe(2); // NOT_SERVING
    const tf = tokenFactory(jwks.issuer, AUD);
    const res = await srv.client.check(checkRequest({ token: tf.mint({ key: key1, claims }) }));
    expect(res.response!.status).toEqual({ code: 14, message: 'dependency_unavailable' });
    expect(res.response!.denied_response!.status.code).toBe(503);
    // Recovery needs no restart.
    jwks.setFault('none');
    await waitFor(() => srv!.app.ready(), 15_000, 'keys after recovery');
    expect(await decide(tf.mint({ key: key1, claims }))).toBe('allowed');
  });

  it('answers deadline_exceeded before the caller deadline when a key refetch hangs', async () => {
    jwks = await startJwksServer({ jwks: jwksOf(key1) });
    const cfg = config(jwks, { unknown_kid_wait_ms: 5000, fetch_timeout_ms: 5000 });
    srv = await startTestServer({ ...cfg, server: { decision_timeout_ms: 5000 } });
    jwks.setFault('hang');
    const tf = tokenFactory(jwks.issuer, AUD);
    const started = Date.now();
    const res = await srv.client.check(checkRequest({ token: tf.mint({ key: key2, claims }) }), { deadlineMs: 1000 });
    const took = Date.now() - started;
    // An explicit deny, not a DEADLINE_EXCEEDED RPC error and not a hang.
    expect(res.rpcCode).toBe(0);
    expect(res.response!.status).toEqual({ code: 14, message: 'deadline_exceeded' });
    expect(took).toBeLessThan(1000);
    // Known keys are unaffected while the refetch hangs.
    expect(await decide(tf.mint({ key: key1, claims }))).toBe('allowed');
  });

  it('one issuer down does not take the others down: its tokens get dependency_unavailable, others pass', async () => {
    jwks = await startJwksServer({ jwks: jwksOf(key1), issuerPath: '/good' });
    const broken = await startJwksServer({ jwks: jwksOf(key2), issuerPath: '/broken' });
    broken.setFault('status500');
    try {
      const cfg = config(jwks);
      (cfg.identity as { issuers: unknown[] }).issuers.push({ issuer: broken.issuer, audiences: [AUD], keys: { jwks_uri: broken.jwksUri } });
      srv = await startTestServer(cfg, { waitReady: false });
      await waitFor(async () => (await decide(tokenFactory(jwks!.issuer, AUD).mint({ key: key1, claims }))) === 'allowed', 10_000, 'good issuer ready');
      expect(srv.app.ready()).toBe(false);
      expect((await fetch(`${srv.httpUrl}/readyz`)).status).toBe(503);
      const res = await srv.client.check(checkRequest({ token: tokenFactory(broken.issuer, AUD).mint({ key: key2, claims }) }));
      expect(res.response!.status).toEqual({ code: 14, message: 'dependency_unavailable' });
    } finally {
      await broken.close();
    }
  });
});
