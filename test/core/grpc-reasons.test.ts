import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema/index.js';
import { signDevToken } from '../../src/identity/dev-token.js';
import { REASONS, type Reason } from '../../src/reasons.js';
import { checkRequest, responseHeader, type RequestSpec } from '../helpers/grpc.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * One request per reason over the real gRPC socket, asserting the whole answer Envoy would act
 * on: gRPC status, HTTP status, reason header, challenge and JSON body.
 */
const hour = new Date().getUTCHours();
const pad = (h: number) => String(h % 24).padStart(2, '0');
// A window that is certainly closed now: it opens two hours from now and closes an hour later.
const closedWindow = { timezone: 'UTC', start: `${pad(hour + 2)}:00`, end: `${pad(hour + 3)}:00` };

const CONFIG: ConfigInput = {
  identity: { development_keys: true },
  state: { remediation: { enabled: false } },
  policy: {
    risk: { mfa: { amr: ['mfa'], acr: ['urn:zt:loa:2'], max_age_s: 300 } },
    resources: {
      orders: { sensitivity: 'medium', classification: 'internal' },
      vault: { sensitivity: 'high', classification: 'restricted' },
      night: { sensitivity: 'low', classification: 'public', time_window: closedWindow },
      db: { sensitivity: 'low', classification: 'public', identity: 'workload' },
      api: { sensitivity: 'low', classification: 'public', identity: 'any' },
      admin: { require: { roles_all: ['admin'] } },
      write: { require: { scopes_all: ['orders:write'] } },
      tenant: { when: 'request.headers["x-tenant"] == claims.tenant' },
    },
    routes: [
      { prefix: '/orders', resource: 'orders' },
      { prefix: '/vault', resource: 'vault' },
      { prefix: '/night', resource: 'night' },
      { prefix: '/db', resource: 'db' },
      { prefix: '/api', resource: 'api' },
      { prefix: '/admin', resource: 'admin' },
      { prefix: '/write', resource: 'write' },
      { prefix: '/tenant', resource: 'tenant' },
    ],
    service_pairs: [{ from: 'spiffe://cluster.local/ns/*/sa/web', to: 'api' }],
  },
};

const base = { allowed_resources: ['orders', 'vault', 'night', 'api', 'admin', 'write', 'tenant'], tenant: 'acme', clearance_level: 'restricted', risk_score: 0.1 };

interface Row {
  readonly reason: Reason;
  readonly sub?: string;
  readonly claims?: Record<string, unknown>;
  readonly req?: RequestSpec;
  readonly noToken?: boolean;
  readonly challenge?: string;
}

const ROWS: Row[] = [
  { reason: 'allowed', req: { path: '/orders/1' } },
  { reason: 'token_missing', noToken: true, req: { path: '/orders/1' }, challenge: 'Bearer realm="zt-authz"' },
  { reason: 'user_suspended', sub: 'suspended-sam', req: { path: '/orders/1' } },
  { reason: 'ip_blocked', req: { path: '/orders/1', sourceIp: '198.51.100.66' } },
  { reason: 'admin_approval_required', claims: { risk_score: 0.85 }, req: { path: '/orders/1' } },
  { reason: 'risk_too_high', claims: { risk_score: 0.45, amr: ['mfa'], auth_time: 'now' }, req: { path: '/vault/1' } },
  {
    reason: 'insufficient_user_authentication',
    claims: { risk_score: 0.35 },
    req: { path: '/orders/1' },
    challenge: 'Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="urn:zt:loa:2", max_age="300"',
  },
  { reason: 'device_verification_required', claims: { risk_score: 0.6, amr: ['mfa'], auth_time: 'now' }, req: { path: '/orders/1' } },
  { reason: 'outside_time_window', req: { path: '/night/1' } },
  { reason: 'route_not_found', req: { path: '/nowhere' } },
  { reason: 'resource_not_allowed', claims: { allowed_resources: ['vault'] }, req: { path: '/orders/1' } },
  { reason: 'clearance_insufficient', claims: { clearance_level: 'internal' }, req: { path: '/vault/1' } },
  { reason: 'workload_identity_required', noToken: true, req: { path: '/db/1' } },
  { reason: 'service_pair_not_allowed', noToken: true, req: { path: '/api/1', principal: 'spiffe://cluster.local/ns/prod/sa/batch' } },
  { reason: 'request_invalid', req: { path: '/orders/%zz' } },
  { reason: 'role_missing', claims: { roles: ['user'] }, req: { path: '/admin/1' } },
  {
    reason: 'scope_insufficient',
    claims: { scope: 'openid orders:read' },
    req: { path: '/write/1' },
    challenge: 'Bearer realm="zt-authz", error="insufficient_scope", error_description="scope_insufficient", scope="orders:write"',
  },
  { reason: 'condition_failed', req: { path: '/tenant/1', headers: { 'x-tenant': 'globex' } } },
  { reason: 'condition_error', req: { path: '/tenant/1' } },
];

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer(CONFIG);
  await srv.app.state.suspendUser('suspended-sam', 600);
  await srv.app.state.blockIp('198.51.100.66', 600);
});
afterAll(async () => {
  await srv.stop();
});

describe('one request per reason over gRPC', () => {
  it('covers every authorization reason the policy can give', () => {
    const covered = new Set(ROWS.map((r) => r.reason));
    const policyReasons = (Object.keys(REASONS) as Reason[]).filter((r) => REASONS[r].kind === 'authz' && r !== 'internal_error');
    for (const r of policyReasons) expect(covered.has(r), r).toBe(true);
  });

  it.each(ROWS.map((r) => [r.reason, r] as const))('%s', async (_name, row) => {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = { ...base, ...row.claims };
    if (claims.auth_time === 'now') claims.auth_time = now - 10;
    const token = row.noToken ? undefined : await signDevToken({ sub: row.sub ?? 'alice', ttlS: 600, claims });
    const res = await srv.client.check(checkRequest({ ...row.req, ...(token ? { token } : {}) }));
    expect(res.rpcCode).toBe(0);
    const r = res.response!;
    const spec = REASONS[row.reason];
    if (row.reason === 'allowed') {
      expect(r.status.code).toBe(0);
      expect(r.ok_response).toBeDefined();
      expect(r.denied_response).toBeUndefined();
      return;
    }
    expect(r.status).toEqual({ code: spec.grpc, message: row.reason });
    expect(r.ok_response).toBeUndefined();
    expect(r.denied_response!.status.code).toBe(spec.http);
    expect(responseHeader(r, 'x-zt-authz-reason')).toBe(row.reason);
    expect(responseHeader(r, 'content-type')).toBe('application/json');
    const id = responseHeader(r, 'x-auth-decision-id');
    expect(JSON.parse(r.denied_response!.body)).toEqual({ error: row.reason, decision_id: id });
    expect(responseHeader(r, 'www-authenticate')).toBe(row.challenge);
    const meta = r.dynamic_metadata.fields as Record<string, { stringValue?: string }>;
    expect(meta.reason?.stringValue).toBe(row.reason);
    expect(meta.decision_id?.stringValue).toBe(id);
  });
});
