import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema/index.js';
import { signDevToken } from '../../src/identity/dev-token.js';
import { CLI } from '../helpers/cli.js';
import { checkRequest } from '../helpers/grpc.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** The CLI as a child process, without blocking this process (the in-process server must answer it). */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const policy = (expose: boolean): ConfigInput => ({
  identity: { development_keys: true },
  state: { remediation: { enabled: false } },
  policy: {
    headers: { expose_reason: expose },
    resources: { orders: { sensitivity: 'low', classification: 'internal' }, admin: { sensitivity: 'high', classification: 'restricted' } },
    routes: [
      { prefix: '/api/orders', resource: 'orders' },
      { prefix: '/admin', resource: 'admin' },
    ],
  },
});

let open: TestServer;
let quiet: TestServer;
let token: string;
beforeAll(async () => {
  [open, quiet] = await Promise.all([startTestServer(policy(true)), startTestServer(policy(false))]);
  token = await signDevToken({ sub: 'alice', ttlS: 600, claims: { allowed_resources: ['orders'], clearance_level: 'internal' } });
});
afterAll(async () => {
  await Promise.all([open.stop(), quiet.stop()]);
});

type Out = {
  decision: string;
  grpc_status: number;
  reason: string;
  http_status?: number;
  client_headers?: Record<string, string>;
  upstream_headers?: Record<string, string>;
  body?: string;
  dynamic_metadata: Record<string, unknown>;
};

// Each test runs several CLI processes one after another: generous on a busy shared machine.
describe('zt-authz check: a gRPC Check client', { timeout: 120_000 }, () => {
  it('allow: exit 0 with the upstream headers and dynamic metadata, human and --json', async () => {
    const human = await cli(['check', '--addr', open.grpcAddress, '--token', token, '--path', '/api/orders/7']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^ALLOW allowed \(gRPC 0 OK\)/);
    expect(human.stdout).toMatch(/upstream header {3}x-user-id: alice/);
    const json = await cli(['check', '--addr', open.grpcAddress, '--token', token, '--path', '/api/orders/7', '--json']);
    const out = JSON.parse(json.stdout) as Out;
    expect(out).toMatchObject({ decision: 'allow', grpc_status: 0, reason: 'allowed', upstream_headers: { 'x-user-id': 'alice' }, dynamic_metadata: { sub: 'alice', resource: 'orders', reason: 'allowed' } });
  });

  it('deny: exit 3 with status, reason, client headers, body; --header and --method reach the checks', async () => {
    const r = await cli(['check', '--addr', open.grpcAddress, '--path', '/admin/users', '--method', 'post', '--header', `authorization=Bearer ${token}`, '--json']);
    expect(r.code).toBe(3);
    const out = JSON.parse(r.stdout) as Out;
    expect(out).toMatchObject({ decision: 'deny', grpc_status: 7, reason: 'resource_not_allowed', http_status: 403, client_headers: { 'x-zt-authz-reason': 'resource_not_allowed' } });
    expect(out.body).toContain('"error":"resource_not_allowed"');
    const missing = await cli(['check', '--addr', open.grpcAddress, '--path', '/api/orders']);
    expect(missing.code).toBe(3);
    expect(missing.stdout).toMatch(/^DENY token_missing \(gRPC 16 UNAUTHENTICATED, HTTP 401\)/);
  });

  it('no server: exit 1 with one line; no --addr: usage, exit 2', async () => {
    const r = await cli(['check', '--addr', '127.0.0.1:1', '--timeout-ms', '2000']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect((await cli(['check'])).code).toBe(2);
  });
});

describe('policy.headers.expose_reason: false', { timeout: 120_000 }, () => {
  it('keeps the reason out of client-visible headers, body and challenge; dynamic metadata still has it', async () => {
    const r = await quiet.client.check(checkRequest({ token, path: '/admin/users' }));
    const denied = r.response!.denied_response!;
    expect(r.response!.status.code).toBe(7);
    expect(denied.headers.map((h) => h.header.key)).not.toContain('x-zt-authz-reason');
    expect(JSON.parse(denied.body)).toEqual({ error: 'forbidden', decision_id: expect.any(String) });
    expect(JSON.stringify(denied)).not.toContain('resource_not_allowed');
    const fields = r.response!.dynamic_metadata.fields as Record<string, Record<string, unknown>>;
    expect(Object.values(fields.reason!)).toContain('resource_not_allowed');

    const expired = await signDevToken({ sub: 'alice', ttlS: -3600, claims: { iat: Math.floor(Date.now() / 1000) - 7200 } });
    const e = await quiet.client.check(checkRequest({ token: expired, path: '/api/orders' }));
    const challenge = e.response!.denied_response!.headers.find((h) => h.header.key === 'www-authenticate')?.header.value;
    expect(challenge).toBe('Bearer realm="zt-authz", error="invalid_token"');
    expect(JSON.parse(e.response!.denied_response!.body).error).toBe('unauthorized');

    // The HTTP authorization mode keeps it back too.
    const http = await fetch(`${quiet.httpUrl}/authz/admin/users`, { headers: { authorization: `Bearer ${token}` } });
    expect(http.status).toBe(403);
    expect(http.headers.get('x-zt-authz-reason')).toBeNull();
    expect(await http.text()).not.toContain('resource_not_allowed');
    // The metric still counts the reason.
    expect(await (await fetch(`${quiet.httpUrl}/metrics`)).text()).toMatch(/zt_authz_decisions_total\{[^}]*reason="resource_not_allowed"/);
  });

  it('the check client shows what the client would see and the reason from the metadata', async () => {
    const r = await cli(['check', '--addr', quiet.grpcAddress, '--token', token, '--path', '/admin', '--json']);
    const out = JSON.parse(r.stdout) as Out;
    expect(out.reason).toBe('resource_not_allowed');
    expect(out.client_headers).not.toHaveProperty('x-zt-authz-reason');
  });
});
