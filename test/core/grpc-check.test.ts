import { connect, constants } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../../src/identity/dev-token.js';
import { checkRequest as baseRequest, responseHeader, type RequestSpec } from '../helpers/grpc.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** The embedded demo config over a real gRPC socket, with the client Envoy would be. */
let srv: TestServer;
let good: string;
const ORDERS_CLAIMS = { allowed_resources: ['orders'], clearance_level: 'internal', risk_score: 0.1 };

beforeAll(async () => {
  srv = await startTestServer();
  good = await signDevToken({ sub: 'alice', ttlS: 600, claims: ORDERS_CLAIMS });
});
afterAll(async () => {
  await srv.stop();
});

// Auto-remediation blocks an IP after 5 failed authentications; each call here gets its own IP.
let ipCounter = 0;
const checkRequest = (spec: RequestSpec = {}) => baseRequest({ sourceIp: `10.77.${ipCounter >> 8}.${ipCounter++ & 255}`, ...spec });

function parseBody(body: string | undefined): Record<string, unknown> {
  return JSON.parse(body ?? 'null') as Record<string, unknown>;
}

describe('Check over gRPC: allow', () => {
  it('allows a valid token and sends identity headers upstream, overwriting spoofed copies', async () => {
    const res = await srv.client.check(checkRequest({ token: good, headers: { 'x-user-id': 'mallory' } }));
    expect(res.rpcCode).toBe(0);
    const r = res.response!;
    expect(r.status.code).toBe(0);
    expect(r.denied_response).toBeUndefined();
    const headers = r.ok_response!.headers;
    const userHeader = headers.find((h) => h.header.key === 'x-user-id');
    expect(userHeader?.header.value).toBe('alice');
    // OVERWRITE_IF_EXISTS_OR_ADD: Envoy replaces the client's x-user-id instead of appending to it.
    expect(userHeader?.append_action).toBe(2);
    expect(responseHeader(r, 'x-risk-score')).toBe('0.1');
    expect(responseHeader(r, 'x-auth-decision-id')).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
    const meta = r.dynamic_metadata.fields as Record<string, { stringValue?: string; numberValue?: number }>;
    expect(meta.reason?.stringValue).toBe('allowed');
    expect(meta.sub?.stringValue).toBe('alice');
    expect(meta.risk_score?.numberValue).toBe(0.1);
    expect(meta.decision_id?.stringValue).toBe(responseHeader(r, 'x-auth-decision-id'));
  });

  it('gives every decision its own id', async () => {
    const [a, b] = await Promise.all([srv.client.check(checkRequest({ token: good })), srv.client.check(checkRequest({ token: good }))]);
    expect(responseHeader(a.response, 'x-auth-decision-id')).not.toBe(responseHeader(b.response, 'x-auth-decision-id'));
  });
});

describe('Check over gRPC: deny', () => {
  it('401 token_missing with a bare Bearer challenge (RFC 6750 §3)', async () => {
    const res = await srv.client.check(checkRequest());
    const r = res.response!;
    expect(r.status).toEqual({ code: 16, message: 'token_missing' });
    expect(r.ok_response).toBeUndefined();
    expect(r.denied_response!.status.code).toBe(401);
    expect(responseHeader(r, 'www-authenticate')).toBe('Bearer realm="zt-authz"');
    expect(responseHeader(r, 'x-zt-authz-reason')).toBe('token_missing');
    expect(responseHeader(r, 'content-type')).toBe('application/json');
    const body = parseBody(r.denied_response!.body);
    expect(body).toEqual({ error: 'token_missing', decision_id: responseHeader(r, 'x-auth-decision-id') });
  });

  it('401 token_expired with an invalid_token challenge', async () => {
    const expired = await signDevToken({ sub: 'alice', ttlS: 1, claims: { ...ORDERS_CLAIMS, iat: Math.floor(Date.now() / 1000) - 7200 } });
    // exp = iat-independent now + 1 s; wait for it to pass the 60 s skew by minting it in the past instead:
    const old = await signDevToken({ sub: 'alice', ttlS: -3600, claims: { ...ORDERS_CLAIMS, iat: Math.floor(Date.now() / 1000) - 7200 } });
    expect(expired).not.toBe(old);
    const r = (await srv.client.check(checkRequest({ token: old }))).response!;
    expect(r.status).toEqual({ code: 16, message: 'token_expired' });
    expect(r.denied_response!.status.code).toBe(401);
    expect(responseHeader(r, 'www-authenticate')).toBe('Bearer realm="zt-authz", error="invalid_token", error_description="token_expired"');
  });

  it('401 token_not_yet_valid for nbf in the future', async () => {
    const t = await signDevToken({ sub: 'alice', ttlS: 3600, claims: { ...ORDERS_CLAIMS, nbf: Math.floor(Date.now() / 1000) + 600 } });
    const r = (await srv.client.check(checkRequest({ token: t }))).response!;
    expect(r.status.message).toBe('token_not_yet_valid');
  });

  it.each([
    ['issuer_unknown', { iss: 'https://evil.example' }],
    ['audience_mismatch', { aud: 'someone-else' }],
  ])('401 %s', async (reason, claims) => {
    const t = await signDevToken({ sub: 'alice', ttlS: 600, claims: { ...ORDERS_CLAIMS, ...claims } });
    const r = (await srv.client.check(checkRequest({ token: t }))).response!;
    expect(r.status).toEqual({ code: 16, message: reason });
  });

  it('401 for alg none, a tampered payload and an oversized token', async () => {
    const [h, p] = good.split('.') as [string, string, string];
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url') + '.' + p + '.';
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const tampered = h + '.' + Buffer.from(JSON.stringify({ ...payload, sub: 'admin' })).toString('base64url') + '.' + good.split('.')[2];
    const huge = h + '.' + 'A'.repeat(20_000) + '.' + good.split('.')[2];
    for (const [token, reason] of [
      [none, /token_(invalid|malformed)/],
      [tampered, /token_invalid/],
      [huge, /token_malformed/],
    ] as const) {
      const r = (await srv.client.check(checkRequest({ token }))).response!;
      expect(r.status.code).toBe(16);
      expect(r.status.message).toMatch(reason);
      expect(r.ok_response).toBeUndefined();
    }
  });

  it('401 token_malformed for two Authorization headers (Envoy joins them with ",")', async () => {
    const r = (await srv.client.check(checkRequest({ headers: { authorization: `Bearer ${good},Bearer ${good}` } }))).response!;
    expect(r.status).toEqual({ code: 16, message: 'token_malformed' });
  });

  it('403 for a valid user on a resource the token does not grant', async () => {
    const r = (await srv.client.check(checkRequest({ token: good, path: '/admin/users' }))).response!;
    expect(r.status.code).toBe(7);
    expect(r.denied_response!.status.code).toBe(403);
    expect(responseHeader(r, 'www-authenticate')).toBeUndefined();
    expect(['resource_not_allowed', 'clearance_insufficient', 'risk_too_high']).toContain(r.status.message);
  });

  it('403 route_not_found for a path no route maps, including // tricks that would reach /admin', async () => {
    const r = (await srv.client.check(checkRequest({ token: good, path: '/nowhere' }))).response!;
    expect(r.status).toEqual({ code: 7, message: 'route_not_found' });
    const sneaky = (await srv.client.check(checkRequest({ token: good, path: '/api/orders/..%2F..%2Fadmin' }))).response!;
    expect(sneaky.status.code).not.toBe(0);
  });

  it('400 request_invalid for a CheckRequest without HTTP attributes', async () => {
    const res = await srv.client.check({});
    expect(res.rpcCode).toBe(0);
    expect(res.response!.status).toEqual({ code: 7, message: 'request_invalid' });
    expect(res.response!.denied_response!.status.code).toBe(400);
  });

  it('answers a malformed protobuf frame with an explicit request_invalid deny, and keeps serving', async () => {
    const session = connect(`http://${srv.grpcAddress}`);
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 6]), Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])]);
    const chunks: Buffer[] = [];
    const status = await new Promise<string | undefined>((resolve, reject) => {
      const stream = session.request({
        [constants.HTTP2_HEADER_METHOD]: 'POST',
        [constants.HTTP2_HEADER_PATH]: '/envoy.service.auth.v3.Authorization/Check',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let grpcStatus: string | undefined;
      stream.on('response', (h) => {
        if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
      });
      stream.on('trailers', (t) => {
        grpcStatus = String(t['grpc-status']);
      });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => resolve(grpcStatus));
      stream.on('error', reject);
      stream.end(frame);
    });
    session.close();
    // The RPC succeeds and carries a CheckResponse that denies: status PERMISSION_DENIED, reason request_invalid.
    expect(status).toBe('0');
    const body = Buffer.concat(chunks);
    expect(body.length).toBeGreaterThan(5);
    expect(body.subarray(5).toString('latin1')).toContain('request_invalid');
    const after = await srv.client.check(checkRequest({ token: good }));
    expect(after.response!.status.code).toBe(0);
  });
});

describe('health and ops endpoints', () => {
  it('grpc.health.v1 reports SERVING for "" and the Authorization service', async () => {
    expect(await srv.client.health('')).toBe(1);
    expect(await srv.client.health('envoy.service.auth.v3.Authorization')).toBe(1);
    await expect(srv.client.health('no.such.Service')).rejects.toMatchObject({ code: 5 });
  });

  it('/healthz, /readyz and /metrics', async () => {
    expect((await fetch(`${srv.httpUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${srv.httpUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, keys: 'loaded' });
    const metrics = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/zt_authz_decisions_total\{result="allow",reason="allowed"\} [1-9]/);
    expect(metrics).toMatch(/zt_authz_decisions_total\{result="deny",reason="token_missing"\} [1-9]/);
    expect(metrics).toContain('zt_authz_check_duration_seconds_bucket');
    expect(metrics).toMatch(/zt_authz_config_info\{hash="[0-9a-f]{12}"\} 1/);
  });
});
