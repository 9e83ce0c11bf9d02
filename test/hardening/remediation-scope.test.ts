import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema/index.js';
import type { MemoryStateStore } from '../../src/state/memory-store.js';
import { checkRequest, type RequestSpec } from '../helpers/grpc.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { b64url, jwksOf, makeKey, tokenFactory, type TokenFactory } from '../helpers/tokens.js';

/**
 * Auto-remediation blames only an address that is one client: never a proxy, gateway or mesh peer
 * relaying for others, never an exempt CIDR, and never for the failures honest clients produce.
 * Real sidecar (memory backend, the default), real gRPC and real HTTP, tokens from a real JWKS.
 */
const AUD = 'orders-api';
const key = makeKey('RS256', 'k1');
const rotatedOut = makeKey('RS256', 'k0');
const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const claims = { allowed_resources: ['orders'] };
const GATEWAY = 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account';

let jwks: JwksServer;
let tf: TokenFactory;

function config(extra: { hops?: number; exempt?: string[] } = {}): ConfigInput {
  return {
    identity: { issuers: [{ issuer: jwks.issuer, audiences: [AUD], keys: { jwks_uri: jwks.jwksUri, unknown_kid_cooldown_s: 0 } }] },
    network: { trusted_xff_hops: extra.hops ?? 0 },
    policy: { resources: { orders: { sensitivity: 'low', classification: 'public' } }, routes: [{ prefix: '/api/orders', resource: 'orders' }], service_pairs: [{ from: GATEWAY, to: 'orders' }] },
    state: { remediation: { threshold: 5, window_s: 900, block_ttl_s: 1800, exempt: extra.exempt ?? [] } },
  };
}

/** Five kinds of forgery, as an attacker sends them. */
function forgeries(): string[] {
  const h = b64url({ alg: 'none', typ: 'JWT' });
  const p = b64url(tf.claims(claims));
  return [
    tf.mint({ key, claims, signWith: { alg: 'RS256', key: attacker } }), // bad signature
    `${h}.${p}.`, // alg none
    'not.a.jwt', // malformed
    tf.mint({ key, claims, header: { alg: 'HS256' }, signWith: { alg: 'HS256', key: Buffer.alloc(32, 1) } }), // alg not allowed
    tf.mint({ key, claims, signWith: { alg: 'RS256', key: attacker } }),
  ];
}

async function reason(srv: TestServer, spec: RequestSpec): Promise<string> {
  const r = await srv.client.check(checkRequest({ path: '/api/orders/1', ...spec }));
  expect(r.rpcCode).toBe(0);
  return r.response!.status.message || 'allowed';
}

function alerts(srv: TestServer): unknown[] {
  return (srv.app.state as MemoryStateStore).alerts;
}

beforeAll(async () => {
  jwks = await startJwksServer({ jwks: jwksOf(key) });
  tf = tokenFactory(jwks.issuer, AUD);
});
afterAll(async () => {
  await jwks?.close();
});

describe('auto-remediation over gRPC', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(config({ exempt: ['192.0.2.0/24'] }));
  });
  afterAll(async () => {
    await srv?.stop();
  });

  it('seed: five forged tokens from one client block that client and raise a security alert; others pass', async () => {
    const good = tf.mint({ key, claims });
    expect(await reason(srv, { sourceIp: '198.51.100.10', token: good })).toBe('allowed');
    for (const t of forgeries()) expect(await reason(srv, { sourceIp: '198.51.100.10', token: t })).not.toBe('allowed');
    expect(await reason(srv, { sourceIp: '198.51.100.10', token: good })).toBe('ip_blocked');
    expect(alerts(srv)).toContainEqual(expect.objectContaining({ type: 'auto_block', ip: '198.51.100.10', failures: 5 }));
    expect(await reason(srv, { sourceIp: '198.51.100.11', token: good })).toBe('allowed');
  });

  it('a mesh peer (an ingress gateway with a workload principal) is never blocked for the clients behind it', async () => {
    const gw = { sourceIp: '10.20.0.5', principal: GATEWAY };
    for (let i = 0; i < 3; i++) for (const t of forgeries()) expect(await reason(srv, { ...gw, token: t })).not.toBe('allowed');
    expect(await reason(srv, { ...gw, token: tf.mint({ key, claims }) })).toBe('allowed');
    expect(alerts(srv)).not.toContainEqual(expect.objectContaining({ ip: '10.20.0.5' }));
  });

  it('an address in state.remediation.exempt is never counted', async () => {
    for (let i = 0; i < 3; i++) for (const t of forgeries()) await reason(srv, { sourceIp: '192.0.2.40', token: t });
    expect(await reason(srv, { sourceIp: '192.0.2.40', token: tf.mint({ key, claims }) })).toBe('allowed');
  });

  it('failures honest clients produce do not count: expired, not yet valid, a kid just rotated out', async () => {
    const now = Math.floor(Date.now() / 1000);
    const honest = [
      tf.mint({ key, claims: { ...claims, iat: now - 7200, exp: now - 3600 } }),
      tf.mint({ key, claims: { ...claims, nbf: now + 3600 } }),
      tf.mint({ key: rotatedOut, claims }),
    ];
    const expected = ['token_expired', 'token_not_yet_valid', 'token_invalid'];
    for (let i = 0; i < 4; i++) {
      for (const [j, t] of honest.entries()) expect(await reason(srv, { sourceIp: '198.51.100.20', token: t })).toBe(expected[j]);
    }
    expect(await reason(srv, { sourceIp: '198.51.100.20', token: tf.mint({ key, claims }) })).toBe('allowed');
  });
});

describe('auto-remediation behind trusted x-forwarded-for hops', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(config({ hops: 1 }));
  });
  afterAll(async () => {
    await srv?.stop();
  });

  it('counts against the forwarded client, never against the proxy that forwards no address', async () => {
    const proxy = '10.30.0.1';
    const good = tf.mint({ key, claims });
    // The proxy forwards no client address: its failures are nobody's in particular.
    for (let i = 0; i < 2; i++) for (const t of forgeries()) await reason(srv, { sourceIp: proxy, token: t });
    expect(await reason(srv, { sourceIp: proxy, token: good })).toBe('allowed');
    // A client it names is blocked; another client behind the same proxy is not.
    for (const t of forgeries()) await reason(srv, { sourceIp: proxy, token: t, headers: { 'x-forwarded-for': '203.0.113.7' } });
    expect(await reason(srv, { sourceIp: proxy, token: good, headers: { 'x-forwarded-for': '203.0.113.7' } })).toBe('ip_blocked');
    expect(await reason(srv, { sourceIp: proxy, token: good, headers: { 'x-forwarded-for': '203.0.113.8' } })).toBe('allowed');
    expect(await reason(srv, { sourceIp: proxy, token: good })).toBe('allowed');
  });
});

describe('auto-remediation in HTTP mode', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(config());
  });
  afterAll(async () => {
    await srv?.stop();
  });

  async function httpReason(token: string, headers: Record<string, string> = {}): Promise<string> {
    const res = await fetch(`${srv.httpUrl}/authz/api/orders/1`, { headers: { authorization: `Bearer ${token}`, ...headers } });
    await res.arrayBuffer();
    return res.headers.get('x-zt-authz-reason') ?? (res.status === 200 ? 'allowed' : `http ${res.status}`);
  }

  it('a trusted proxy (loopback) that sends no X-Real-IP is never blocked; the client it names is', async () => {
    const good = tf.mint({ key, claims });
    for (let i = 0; i < 2; i++) for (const t of forgeries()) expect(await httpReason(t)).not.toBe('allowed');
    expect(await httpReason(good)).toBe('allowed');
    for (const t of forgeries()) await httpReason(t, { 'x-real-ip': '203.0.113.50' });
    expect(await httpReason(good, { 'x-real-ip': '203.0.113.50' })).toBe('ip_blocked');
    expect(await httpReason(good, { 'x-real-ip': '203.0.113.51' })).toBe('allowed');
    expect(await httpReason(good)).toBe('allowed');
    expect(alerts(srv)).toContainEqual(expect.objectContaining({ type: 'auto_block', ip: '203.0.113.50' }));
    expect(alerts(srv)).not.toContainEqual(expect.objectContaining({ ip: '127.0.0.1' }));
  });
});
