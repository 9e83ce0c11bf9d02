import { generateKeyPairSync } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { validate } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { adminRefusal } from '../../src/transport/admin-endpoint.js';
import { admin } from '../state/fixtures.js';
import { checkRequest } from '../helpers/grpc.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/server.js';
import { jwksOf, makeKey, tokenFactory, type TokenFactory } from '../helpers/tokens.js';

/**
 * An operator lifts an auto-block on a running server, whatever the backend: over the loopback
 * admin endpoint (`zt-authz unblock --server`), or for Redis through Redis (`zt-authz unblock --redis`).
 * Nobody else can: no unauthenticated mutation from off-host, from a browser page, or by DNS rebinding.
 */
const AUD = 'orders-api';
const key = makeKey('RS256', 'k1');
const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const claims = { allowed_resources: ['orders'] };
const CLIENT = '198.51.100.77';

let jwks: JwksServer;
let tf: TokenFactory;

function config(state: Record<string, unknown> = {}): ConfigInput {
  return {
    identity: { issuers: [{ issuer: jwks.issuer, audiences: [AUD], keys: { jwks_uri: jwks.jwksUri } }] },
    policy: { resources: { orders: { sensitivity: 'low', classification: 'public' } }, routes: [{ prefix: '/', resource: 'orders' }] },
    state: { remediation: { threshold: 5, window_s: 900, block_ttl_s: 1800 }, ...state },
  };
}

async function reason(srv: TestServer, token: string): Promise<string> {
  const r = await srv.client.check(checkRequest({ sourceIp: CLIENT, token }));
  return r.response?.status.message || (r.response ? 'allowed' : `rpc ${r.rpcCode}`);
}

async function autoBlock(srv: TestServer): Promise<void> {
  const good = tf.mint({ key, claims });
  expect(await reason(srv, good)).toBe('allowed');
  for (let i = 0; i < 5; i++) await reason(srv, tf.mint({ key, claims, signWith: { alg: 'RS256', key: attacker } }));
  await waitFor(async () => (await reason(srv, good)) === 'ip_blocked', 10_000, 'auto-block');
}

function post(url: string, body: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const JSON_CT = { 'content-type': 'application/json' };

beforeAll(async () => {
  jwks = await startJwksServer({ jwks: jwksOf(key) });
  tf = tokenFactory(jwks.issuer, AUD);
});
afterAll(async () => {
  await jwks?.close();
});

describe('lifting an auto-block on the memory backend', () => {
  let srv: TestServer | undefined;
  afterEach(async () => {
    await srv?.stop();
    srv = undefined;
    delete process.env.ZT_AUTHZ_ADMIN_TOKEN;
  });

  it('zt-authz unblock --server lifts it on the running server; the client is allowed again', async () => {
    srv = await startTestServer(config());
    await autoBlock(srv);
    const r = await admin('unblock', '--server', srv.httpUrl, CLIENT);
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(r.out).toContain(`unblocked: ${CLIENT}`);
    expect(await reason(srv, tf.mint({ key, claims }))).toBe('allowed');
    // Bad input is refused before anything is sent.
    expect((await admin('unblock', '--server', srv.httpUrl, '1.2.3')).code).toBe(2);
    expect((await admin('block', '--server', srv.httpUrl, CLIENT)).code).toBe(2);
  });

  it('refuses browsers and rebinding: form posts, any Origin, a Host that is not loopback', async () => {
    srv = await startTestServer(config());
    await autoBlock(srv);
    const url = `${srv.httpUrl}/admin/unblock`;
    const body = JSON.stringify({ target: CLIENT });
    expect((await post(url, `target=${CLIENT}`, { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
    expect((await post(url, body, { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post(url, body, { ...JSON_CT, origin: 'http://127.0.0.1:8181' })).status).toBe(415);
    expect((await post(url, body, { ...JSON_CT, host: 'attacker.example:8181' })).status).toBe(403);
    expect(await reason(srv, tf.mint({ key, claims }))).toBe('ip_blocked');
    expect((await post(url, body, JSON_CT)).status).toBe(200);
    expect(await reason(srv, tf.mint({ key, claims }))).toBe('allowed');
  });

  it('with ZT_AUTHZ_ADMIN_TOKEN set, only the bearer of that token may unblock', async () => {
    const token = 'x'.repeat(40);
    process.env.ZT_AUTHZ_ADMIN_TOKEN = token;
    srv = await startTestServer(config());
    await autoBlock(srv);
    const url = `${srv.httpUrl}/admin/unblock`;
    const body = JSON.stringify({ target: CLIENT });
    expect((await post(url, body, JSON_CT)).status).toBe(401);
    expect((await post(url, body, { ...JSON_CT, authorization: `Bearer ${'y'.repeat(40)}` })).status).toBe(401);
    expect(await reason(srv, tf.mint({ key, claims }))).toBe('ip_blocked');
    const r = await admin('unblock', '--server', srv.httpUrl, CLIENT);
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(await reason(srv, tf.mint({ key, claims }))).toBe('allowed');
  });

  it('is off when the HTTP listener is not loopback and no token is set', async () => {
    expect(adminRefusal('0.0.0.0:8181', undefined)).toMatch(/not loopback/);
    expect(adminRefusal('[::]:8181', undefined)).toMatch(/not loopback/);
    expect(adminRefusal('10.0.0.5:8181', undefined)).toMatch(/not loopback/);
    expect(adminRefusal('127.0.0.1:8181', undefined)).toBeUndefined();
    expect(adminRefusal('[::1]:8181', undefined)).toBeUndefined();
    expect(adminRefusal('0.0.0.0:8181', 'z'.repeat(32))).toBeUndefined();
    expect(() => adminRefusal('127.0.0.1:8181', 'short')).toThrow(/at least 32/);

    const raw = { ...config(), server: { grpc: { address: '127.0.0.1:0' }, http: { address: '0.0.0.0:0' } }, log: { decisions: 'none' } };
    const loaded = validate(raw, 'test', false);
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    const app = await App.start(loaded, { logger: silentLogger });
    try {
      const port = app.httpAddress!.slice(app.httpAddress!.lastIndexOf(':') + 1);
      const res = await post(`http://127.0.0.1:${port}/admin/unblock`, JSON.stringify({ target: CLIENT }), JSON_CT);
      expect(res.status).toBe(405);
    } finally {
      await app.shutdown(1000);
    }
  });
});

describe('lifting an auto-block on the Redis backend', () => {
  let redis: RedisProcess;
  let srv: TestServer;
  beforeAll(async () => {
    redis = await startRedis();
    srv = await startTestServer(config({ backend: 'redis', redis: { url: redis.url } }));
  });
  afterAll(async () => {
    await srv?.stop();
    await redis?.stop();
  });

  it('zt-authz unblock --redis deletes the key and the running server allows the client again', async () => {
    await autoBlock(srv);
    expect(await redis.cli('EXISTS', `blocked_ip:${CLIENT}`)).toContain('1');
    const r = await admin('unblock', CLIENT, '--redis', redis.url);
    expect(r, r.err).toMatchObject({ code: 0 });
    await waitFor(async () => (await reason(srv, tf.mint({ key, claims }))) === 'allowed', 10_000, 'unblock enforced');
  });

  it('zt-authz unblock --server works on the Redis backend too', async () => {
    await autoBlock(srv);
    const r = await admin('unblock', '--server', srv.httpUrl, CLIENT);
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(await reason(srv, tf.mint({ key, claims }))).toBe('allowed');
    expect(await redis.cli('EXISTS', `blocked_ip:${CLIENT}`)).toContain('0');
  });
});
