import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CONFIG } from '../../src/config/defaults.js';
import { signDevToken } from '../../src/identity/dev-token.js';
import { startNginx, freePort, type Nginx } from '../helpers/nginx.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * The HTTP authorization mode behind a real nginx `auth_request`, the way users wire it:
 * nginx asks the sidecar, copies x-user-id upstream on 200, and answers 401/403 itself.
 */
let srv: TestServer;
let nginx: Nginx;
let upstream: Server;
const seen: IncomingHttpHeaders[] = [];

function authzLocation(authzPort: number): string {
  return `
    location = /_zt_authz {
      internal;
      proxy_pass http://127.0.0.1:${authzPort}/authz;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_connect_timeout 200ms;
      proxy_read_timeout 500ms;
    }`;
}

async function nginxFor(authzPort: number, upstreamPort: number): Promise<Nginx> {
  return startNginx(`
    ${authzLocation(authzPort)}
    location / {
      auth_request /_zt_authz;
      auth_request_set $zt_user $upstream_http_x_user_id;
      auth_request_set $zt_decision $upstream_http_x_auth_decision_id;
      auth_request_set $zt_reason $upstream_http_x_zt_authz_reason;
      proxy_set_header X-User-Id $zt_user;
      proxy_set_header X-Auth-Decision-Id $zt_decision;
      add_header X-Zt-Authz-Reason $zt_reason always;
      proxy_pass http://127.0.0.1:${upstreamPort};
    }`);
}

beforeAll(async () => {
  srv = await startTestServer();
  upstream = createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('upstream ok');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const authzPort = Number(new URL(srv.httpUrl).port);
  nginx = await nginxFor(authzPort, (upstream.address() as { port: number }).port);
});

afterAll(async () => {
  await nginx?.stop();
  await srv?.stop();
  await new Promise((r) => upstream?.close(r));
});

const ORDERS = { allowed_resources: ['orders'], clearance_level: 'internal' };

describe('HTTP authorization mode behind real nginx auth_request', () => {
  it('an allowed request reaches the upstream with x-user-id set and the spoofed copy replaced', async () => {
    const token = await signDevToken({ sub: 'alice', ttlS: 600, claims: ORDERS });
    seen.length = 0;
    const res = await fetch(`${nginx.url}/api/orders/17?x=1`, { headers: { authorization: `Bearer ${token}`, 'x-user-id': 'mallory' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('upstream ok');
    expect(seen).toHaveLength(1);
    expect(seen[0]!['x-user-id']).toBe('alice');
    expect(seen[0]!['x-auth-decision-id']).toMatch(/^[0-9a-f]{12}-/);
  });

  it('an expired token gets 401 with the Bearer challenge, and never reaches the upstream', async () => {
    const token = await signDevToken({ sub: 'alice', ttlS: -3600, claims: { ...ORDERS, iat: Math.floor(Date.now() / 1000) - 7200 } });
    seen.length = 0;
    const res = await fetch(`${nginx.url}/api/orders`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="zt-authz", error="invalid_token", error_description="token_expired"');
    expect(res.headers.get('x-zt-authz-reason')).toBe('token_expired');
    expect(seen).toHaveLength(0);
  });

  it('a suspended user gets 403', async () => {
    await srv.app.state.suspendUser('bob', 60, 'test');
    const token = await signDevToken({ sub: 'bob', ttlS: 600, claims: ORDERS });
    seen.length = 0;
    const res = await fetch(`${nginx.url}/api/orders`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(403);
    expect(res.headers.get('x-zt-authz-reason')).toBe('user_suspended');
    expect(seen).toHaveLength(0);
  });

  it('path tricks are judged on the normalised path nginx forwards', async () => {
    const token = await signDevToken({ sub: 'alice', ttlS: 600, claims: ORDERS });
    seen.length = 0;
    const res = await fetch(`${nginx.url}/api/orders/..%2F..%2Fadmin`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(403);
    expect(seen).toHaveLength(0);
  });

  it('with the sidecar down nginx answers 5xx and never reaches the upstream', async () => {
    const deadPort = await freePort();
    const upstreamPort = (upstream.address() as { port: number }).port;
    const orphan = await nginxFor(deadPort, upstreamPort);
    try {
      const token = await signDevToken({ sub: 'alice', ttlS: 600, claims: ORDERS });
      seen.length = 0;
      const res = await fetch(`${orphan.url}/api/orders`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBeGreaterThanOrEqual(500);
      expect(seen).toHaveLength(0);
    } finally {
      await orphan.stop();
    }
  });
});

describe('HTTP authorization mode, direct (Envoy http_service style)', () => {
  it('judges the request itself under the prefix and ignores X-Original-* from untrusted peers', async () => {
    const token = await signDevToken({ sub: 'alice', ttlS: 600, claims: ORDERS });
    // The test client is 127.0.0.1, a trusted proxy by default: X-Original-URI is believed.
    const viaHeader = await fetch(`${srv.httpUrl}/authz`, { headers: { authorization: `Bearer ${token}`, 'x-original-uri': '/admin/x' } });
    expect(viaHeader.status).toBe(403);
    const direct = await fetch(`${srv.httpUrl}/authz/api/orders/1`, { headers: { authorization: `Bearer ${token}` } });
    expect(direct.status).toBe(200);
    expect(direct.headers.get('x-user-id')).toBe('alice');
    const denied = await fetch(`${srv.httpUrl}/authz/api/orders/1`);
    expect(denied.status).toBe(401);
    expect(await denied.json()).toMatchObject({ error: 'token_missing' });
  });

  it('ignores X-Original-* and X-Forwarded-* from a peer that is not a configured proxy', async () => {
    const strict = await startTestServer({ ...DEMO_CONFIG, server: { http: { trusted_proxies: ['10.0.0.0/8'] } } });
    try {
      const token = await signDevToken({ sub: 'alice', ttlS: 600, claims: ORDERS });
      // The forged headers claim an allowed path; the request itself targets /admin.
      const res = await fetch(`${strict.httpUrl}/authz/admin/users`, {
        headers: { authorization: `Bearer ${token}`, 'x-original-uri': '/api/orders/1', 'x-forwarded-uri': '/api/orders/1', 'x-real-ip': '10.9.9.9' },
      });
      expect(res.status).toBe(403);
      expect(res.headers.get('x-zt-authz-reason')).toBe('resource_not_allowed');
    } finally {
      await strict.stop();
    }
  });

  it('sees two Authorization headers as malformed, as the gRPC mode does', async () => {
    const token = await signDevToken({ sub: 'alice', ttlS: 600, claims: ORDERS });
    const res = await fetch(`${srv.httpUrl}/authz/api/orders/1`, {
      headers: [
        ['authorization', `Bearer ${token}`],
        ['authorization', `Bearer ${token}`],
      ],
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('x-zt-authz-reason')).toBe('token_malformed');
  });
});
