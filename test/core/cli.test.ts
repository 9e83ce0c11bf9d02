import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { DEV_AUDIENCE, DEV_ISSUER } from '../../src/dev/keys.js';
import { authzClient, checkRequest } from '../helpers/grpc.js';
import { runCli, startServe } from '../helpers/cli.js';
import { waitFor } from '../helpers/server.js';

const dir = mkdtempSync(join(tmpdir(), 'zt-cli-'));
const ORDERS = '{"allowed_resources":["orders"],"clearance_level":"internal"}';

describe('zt-authz CLI', () => {
  it.each([[['--help']], [['serve', '--help']], [['check-config', '--help']], [['explain', '--help']], [['token', '--help']]])('%j prints usage and exits 0', (args) => {
    const r = runCli(args);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: zt-authz/);
  });

  it('--version prints the package version and the Node.js it runs on', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const r = runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`zt-authz ${pkg.version} (node ${process.version})\n`);
  });

  it('rejects unknown commands and options with usage and exit 2', () => {
    expect(runCli(['frobnicate']).code).toBe(2);
    const r = runCli(['token', '--nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--nope');
  });

  it('check-config: OK for a valid file, every error with its path for an invalid one', () => {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'identity:\n  issuers:\n    - issuer: https://idp\n      audiences: [a]\n      keys: { jwks_uri: "https://idp/jwks" }\n');
    const ok = runCli(['check-config', good]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/OK \(policy hash [0-9a-f]{12}\)/);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'identity:\n  issuers:\n    - issuer: https://idp\n      audiences: []\n      keys: {}\nstate:\n  backend: redis\npolicy:\n  routes: [{ prefix: /x, resource: ordrs }]\n');
    const r = runCli(['check-config', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('identity.issuers.0.audiences');
    expect(r.stderr).toContain('ordrs');
    const redis = join(dir, 'redis.yaml');
    writeFileSync(redis, 'identity:\n  issuers: [{ issuer: "https://idp", audiences: [a], keys: { jwks_uri: "https://idp/jwks" } }]\nstate:\n  backend: redis\n');
    const r2 = runCli(['check-config', redis]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('state.redis: backend redis needs url, sentinel or cluster');
  });

  it('token prints one development JWT alone on stdout, with the requested claims', () => {
    const r = runCli(['token', '--sub', 'bob', '--ttl', '120', '--claims', '{"risk_score":0.2,"amr":["mfa"]}']);
    expect(r.code).toBe(0);
    const token = r.stdout.trim();
    expect(r.stdout).toBe(token + '\n');
    expect(token.split('.')).toHaveLength(3);
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ sub: 'bob', iss: DEV_ISSUER, aud: DEV_AUDIENCE, risk_score: 0.2, amr: ['mfa'] });
    expect(claims.exp! - claims.iat!).toBe(120);
    expect(decodeProtectedHeader(token).alg).toBe('RS256');
    expect(runCli(['token', '--claims', '[1]']).code).toBe(2);
    expect(runCli(['token', '--ttl', '-5']).code).toBe(2);
  });

  it('explain prints the decision and every check, human and --json', () => {
    const token = runCli(['token', '--sub', 'carol', '--claims', ORDERS]).stdout.trim();
    const allow = runCli(['explain', '--token', token, '--path', '/api/orders/7', '--ip', '10.0.0.1']);
    expect(allow.code).toBe(0);
    expect(allow.stdout).toMatch(/^ALLOW allowed/);
    expect(allow.stdout).toMatch(/pass\s+token/);
    const deny = runCli(['explain', '--token', token, '--path', '//admin/../admin/users', '--json']);
    expect(deny.code).toBe(3);
    const out = JSON.parse(deny.stdout) as { decision: string; reason: string; resource: string; trace: { check: string; verdict: string }[] };
    expect(out.decision).toBe('deny');
    expect(out.resource).toBe('admin');
    expect(out.trace.find((t) => t.verdict === 'deny')?.check).toBeDefined();
    const missing = runCli(['explain', '--path', '/api/orders', '--json']);
    expect(JSON.parse(missing.stdout)).toMatchObject({ decision: 'deny', reason: 'token_missing', http_status: 401 });
  });

  it('serve: refuses an invalid config at startup with its errors', () => {
    const bad = join(dir, 'serve-bad.yaml');
    writeFileSync(bad, 'log: { level: loud }\n');
    const r = runCli(['serve', '--config', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('log.level');
  });

  it('serve: runs on the embedded defaults, warns about development keys, answers Check, exits 0 on SIGTERM', async () => {
    const s = await startServe([]);
    try {
      expect(s.logs.some((l) => l.level === 40 && String(l.msg).includes('DEVELOPMENT'))).toBe(true);
      const client = authzClient(s.grpcAddress);
      await waitFor(async () => (await client.health('')) === 1, 10_000, 'SERVING');
      const token = runCli(['token', '--claims', ORDERS]).stdout.trim();
      const res = await client.check(checkRequest({ token }));
      expect(res.response?.status.code).toBe(0);
      client.close();
      const ready = await fetch(`http://${s.httpAddress}/readyz`);
      expect(ready.status).toBe(200);
    } finally {
      s.proc.kill('SIGTERM');
    }
    expect(await s.exited).toEqual({ code: 0, signal: null });
  });

  it('serve --workers 2: both workers answer on the shared ports and SIGTERM drains them', async () => {
    const s = await startServe(['--workers', '2']);
    const token = runCli(['token', '--claims', ORDERS]).stdout.trim();
    const clients = Array.from({ length: 4 }, () => authzClient(s.grpcAddress, { 'grpc.use_local_subchannel_pool': 1 }));
    try {
      await waitFor(() => s.logs.filter((l) => l.msg === 'zt-authz listening').length >= 2, 15_000, 'two workers listening');
      // Two workers with in-memory state each hold their own lists: said loudly, once.
      expect(s.logs.filter((l) => l.level === 40 && String(l.msg).includes('WITH THE IN-MEMORY STORE'))).toHaveLength(1);
      const prefixes = new Set<string>();
      for (const c of clients) {
        for (let i = 0; i < 3; i++) {
          const res = await c.check(checkRequest({ token }));
          expect(res.response?.status.code).toBe(0);
          prefixes.add(String(res.response?.ok_response?.headers.find((h) => h.header.key === 'x-auth-decision-id')?.header.value).split('-')[0]!);
        }
      }
      // Decision ids carry a per-process prefix: more than one process answered.
      expect(prefixes.size).toBeGreaterThan(1);
    } finally {
      for (const c of clients) c.close();
      s.proc.kill('SIGTERM');
    }
    expect((await s.exited).code).toBe(0);
  });
});
