import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { signDevToken } from '../../src/identity/dev-token.js';
import { authzClient, checkRequest } from '../helpers/grpc.js';
import { startServe } from '../helpers/cli.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/server.js';
import { jwksOf, makeKey } from '../helpers/tokens.js';

const dir = mkdtempSync(join(tmpdir(), 'zt-reload-'));
const file = join(dir, 'config.yaml');

/** Two policies that disagree about /api/orders, so a request shows which one is active. */
const policy = (ordersClassification: string) => `
state: { remediation: { enabled: false } }
policy:
  resources:
    orders: { sensitivity: low, classification: ${ordersClassification} }
  routes:
    - { prefix: /api/orders, resource: orders }
`;
const OPEN = policy('public');
const LOCKED = policy('restricted');

let srv: TestServer;
let token: string;

beforeAll(async () => {
  writeFileSync(file, OPEN);
  const loadOptions = { env: {}, dev: true, flags: { grpc: '127.0.0.1:0', http: '127.0.0.1:0' } };
  const loaded = loadConfig({ ...loadOptions, file });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  srv = await startTestServer(loaded.config, { configFile: file, loadOptions });
  token = await signDevToken({ sub: 'alice', ttlS: 600, claims: { allowed_resources: ['orders'], clearance_level: 'internal' } });
});
afterAll(async () => {
  await srv.stop();
});

async function reason(): Promise<string> {
  const r = await srv.client.check(checkRequest({ token }));
  return r.response?.status.message || (r.response?.status.code === 0 ? 'allowed' : `rpc ${r.rpcCode}`);
}

describe('hot reload', () => {
  it('applies a valid change, refuses an invalid one, and fails no call while under load', async () => {
    expect(await reason()).toBe('allowed');
    const hashOpen = srv.app.policyHash;

    let stop = false;
    const seen = new Map<string, number>();
    let rpcErrors = 0;
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (!stop) {
          const r = await srv.client.check(checkRequest({ token }));
          if (r.rpcCode !== 0) rpcErrors++;
          const key = r.response?.status.message || 'allowed';
          seen.set(key, (seen.get(key) ?? 0) + 1);
        }
      }),
    );

    await new Promise((r) => setTimeout(r, 100));
    writeFileSync(file, LOCKED);
    const applied = await srv.app.reload();
    expect(applied.ok).toBe(true);
    expect(applied.hash).not.toBe(hashOpen);
    await new Promise((r) => setTimeout(r, 100));

    writeFileSync(file, 'policy:\n  routes: [{ prefix: /x, resource: nowhere }]\n  bogus: 1\n');
    const refused = await srv.app.reload();
    expect(refused.ok).toBe(false);
    expect(refused.errors?.join('\n')).toMatch(/bogus|nowhere/);
    expect(srv.app.policyHash).toBe(applied.hash);
    // A CEL condition that does not compile is refused the same way, with its path.
    writeFileSync(file, LOCKED.replace('classification: restricted }', 'classification: restricted, when: "request.method ==" }'));
    const refusedCel = await srv.app.reload();
    expect(refusedCel.ok).toBe(false);
    expect(refusedCel.errors?.join('\n')).toMatch(/^policy\.resources\.orders\.when\.0: syntax error/);
    expect(srv.app.policyHash).toBe(applied.hash);
    await new Promise((r) => setTimeout(r, 100));
    stop = true;
    await load;

    expect(rpcErrors).toBe(0);
    // Only the two policies' answers were ever given: nothing failed, nothing half-applied.
    expect([...seen.keys()].sort()).toEqual(['allowed', 'clearance_insufficient']);
    expect(await reason()).toBe('clearance_insufficient');
    const metrics = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    expect(metrics).toContain(`zt_authz_config_info{hash="${applied.hash}"} 1`);
    expect(metrics).not.toContain(`zt_authz_config_info{hash="${hashOpen}"}`);
    expect(metrics).toMatch(/zt_authz_config_reloads_total\{outcome="applied"\} 1/);
    expect(metrics).toMatch(/zt_authz_config_reloads_total\{outcome="rejected"\} 2/);
  });
});

describe('reload triggers of the real process', () => {
  it('SIGHUP and a change to the file both reload; a broken file keeps the old policy', async () => {
    const f = join(dir, 'process.yaml');
    writeFileSync(f, OPEN);
    const s = await startServe(['--dev', '--config', f]);
    const client = authzClient(s.grpcAddress);
    const decide = async () => (await client.check(checkRequest({ token }))).response?.status.message || 'allowed';
    try {
      await waitFor(async () => (await client.health('')) === 1, 10_000, 'SERVING');
      expect(await decide()).toBe('allowed');
      // A file change alone (ConfigMap update) reloads.
      writeFileSync(f, LOCKED);
      await waitFor(async () => (await decide()) === 'clearance_insufficient', 10_000, 'watch-triggered reload');
      // A broken file is refused with its errors logged; the locked policy keeps serving.
      writeFileSync(f, 'identity: [');
      s.proc.kill('SIGHUP');
      await waitFor(() => s.logs.some((l) => String(l.msg).includes('reload rejected')), 10_000, 'rejection logged');
      expect(await decide()).toBe('clearance_insufficient');
      // SIGHUP with a good file applies it.
      writeFileSync(f, OPEN);
      s.proc.kill('SIGHUP');
      await waitFor(async () => (await decide()) === 'allowed', 10_000, 'SIGHUP reload');
      // Restoring a good file after a refused one is said, not only the refusal.
      await waitFor(() => s.logs.some((l) => l.msg === 'config reloaded: a good file replaces the refused one'), 10_000, 'restore logged');
      // The reload re-applied --dev, --grpc and --http: nothing but the policy changed, and nothing else is claimed.
      const reloads = s.logs.filter((l) => String(l.msg).startsWith('config reloaded'));
      expect(reloads.every((l) => JSON.stringify(l.changed) === '["policy"]')).toBe(true);
      expect(s.logs.some((l) => String(l.msg).includes('takes effect on restart'))).toBe(false);
    } finally {
      client.close();
      s.proc.kill('SIGTERM');
      await s.exited;
    }
  });
});

describe('config metrics name what serves', () => {
  it('a reload refused for its keys leaves build_info on the serving hash and last_reload_success at 0', async () => {
    const f = join(dir, 'metrics.yaml');
    // A real (file) key set, so the refused reload below can point its issuer at a missing one.
    const jwksFile = join(dir, 'metrics-jwks.json');
    writeFileSync(jwksFile, JSON.stringify(jwksOf(makeKey('ES256', 'metrics'))));
    const withKeys = (path: string) => `${OPEN}\nidentity:\n  issuers:\n    - { issuer: https://idp.example, audiences: [api], algorithms: [ES256], keys: { jwks_file: ${path} } }\n`;
    writeFileSync(f, withKeys(jwksFile));
    const loadOptions = { env: {}, flags: { grpc: '127.0.0.1:0', http: '127.0.0.1:0' } };
    const loaded = loadConfig({ ...loadOptions, file: f });
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    const s = await startTestServer(loaded.config, { configFile: f, loadOptions });
    const scrape = async () => (await fetch(`${s.httpUrl}/metrics`)).text();
    try {
      const serving = s.app.policyHash;
      const before = await scrape();
      expect(before).toMatch(new RegExp(`zt_authz_build_info\\{version="\\d+\\.\\d+\\.\\d+",node="${process.version}",policy_hash="${serving}"\\} 1`));
      expect(before).toMatch(/zt_authz_config_last_reload_success 1\n/);
      const startedAt = Number(/zt_authz_config_last_reload_success_timestamp_seconds (\d+)/.exec(before)?.[1]);
      expect(Math.abs(startedAt - Date.now() / 1000)).toBeLessThan(600);
      // Valid config, but its issuer's key file does not exist: the policy compiles, the keys never load.
      writeFileSync(f, withKeys(join(dir, 'missing.json')));
      const refused = await s.app.reload();
      expect(refused.ok).toBe(false);
      const after = await scrape();
      expect(after).toContain(`policy_hash="${serving}"`);
      expect(after).toContain(`zt_authz_config_info{hash="${serving}"} 1`);
      expect(after.match(/^zt_authz_build_info\{/gm)).toHaveLength(1);
      expect(after).toMatch(/zt_authz_config_last_reload_success 0\n/);
      expect(after).toMatch(/zt_authz_config_restart_required 0\n/);
      // A later good reload that changes a restart-only section applies the policy and says a restart is due.
      writeFileSync(f, `${withKeys(jwksFile).replace(OPEN, LOCKED)}server: { decision_timeout_ms: 120 }\n`);
      const applied = await s.app.reload();
      expect(applied.ok).toBe(true);
      const last = await scrape();
      expect(last).toContain(`policy_hash="${applied.hash}"`);
      expect(last).toMatch(/zt_authz_config_last_reload_success 1\n/);
      expect(last).toMatch(/zt_authz_config_restart_required 1\n/);
    } finally {
      await s.stop();
    }
  });
});

describe('one config per request', () => {
  it('a request waiting on a key refetch is answered by the config it started under, though a reload lands meanwhile', async () => {
    const { startJwksServer } = await import('../helpers/jwks-server.js');
    const { jwksOf, makeKey, tokenFactory } = await import('../helpers/tokens.js');
    const { validate } = await import('../../src/config/load.js');
    const k1 = makeKey('RS256', 'k1');
    const k2 = makeKey('RS256', 'k2');
    const jwks = await startJwksServer({ jwks: jwksOf(k1) });
    const config = (decisionHeader: string) => ({
      server: { grpc: { address: '127.0.0.1:0' }, http: { address: '127.0.0.1:0' }, decision_timeout_ms: 20_000 },
      log: { decisions: 'none' as const },
      identity: { issuers: [{ issuer: jwks.issuer, audiences: ['orders-api'], keys: { jwks_uri: jwks.jwksUri, fetch_timeout_ms: 10_000, unknown_kid_cooldown_s: 0, unknown_kid_wait_ms: 3000 } }] },
      state: { backend: 'memory' as const, remediation: { enabled: false } },
      policy: { headers: { decision_id: decisionHeader }, resources: { orders: { sensitivity: 'low' as const, classification: 'public' as const } }, routes: [{ prefix: '/', resource: 'orders' }] },
    });
    const s = await startTestServer(config('x-decision-a'));
    try {
      const before = jwks.count('/jwks.json');
      jwks.setFault('hang');
      // k2 is not in the set: the call waits (up to unknown_kid_wait_ms) on a refetch that hangs.
      const waiting = s.client.check(checkRequest({ token: tokenFactory(jwks.issuer, 'orders-api').mint({ key: k2, claims: { allowed_resources: ['orders'] } }) }), { deadlineMs: 20_000 });
      await waitFor(() => jwks.count('/jwks.json') > before, 10_000, 'the refetch the call waits on');
      const next = validate(config('x-decision-b'), 'test', false);
      if (!next.ok) throw new Error(next.errors.join('\n'));
      expect((await s.app.apply(next)).ok).toBe(true);
      const r = await waiting;
      expect(r.response?.status.message).toBe('token_invalid');
      const names = r.response!.denied_response!.headers.map((h) => h.header.key);
      // Decided and answered by the first config alone: its decision header, not the new one.
      expect(names).toContain('x-decision-a');
      expect(names).not.toContain('x-decision-b');
      // A call that starts now is served by the new config.
      jwks.setFault('none');
      const later = await s.client.check(checkRequest({ token: 'x.y.z' }));
      expect(later.response!.denied_response!.headers.map((h) => h.header.key)).toContain('x-decision-b');
    } finally {
      await s.stop();
      await jwks.close();
    }
  });
});
