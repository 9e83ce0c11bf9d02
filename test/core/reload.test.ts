import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { signDevToken } from '../../src/identity/dev-token.js';
import { authzClient, checkRequest } from '../helpers/grpc.js';
import { startServe } from '../helpers/cli.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/server.js';

const dir = mkdtempSync(join(tmpdir(), 'zt-reload-'));
const file = join(dir, 'config.yaml');

/** Two policies that disagree about /api/orders, so a request shows which one is active. */
const policy = (ordersClassification: string) => `
identity: { development_keys: true }
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
  const loaded = loadConfig({ file, env: {} });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  srv = await startTestServer(loaded.config, { configFile: file });
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
    const s = await startServe(['--config', f]);
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
    } finally {
      client.close();
      s.proc.kill('SIGTERM');
      await s.exited;
    }
  });
});
