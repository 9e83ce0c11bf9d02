import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_AUDIENCE, DEV_ISSUER } from '../../src/dev/keys.js';
import { signDevToken } from '../../src/identity/dev-token.js';
import { authzClient, checkRequest, type AuthzClient } from '../helpers/grpc.js';
import { startServe, type ServeProcess } from '../helpers/cli.js';
import { waitFor } from '../helpers/server.js';

const dir = mkdtempSync(join(tmpdir(), 'zt-decision-log-'));
const decisionsFile = join(dir, 'logs', 'decisions.log');
const config = join(dir, 'config.yaml');
const ALLOWS = 400;
const SAMPLE = 0.25;

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

let s: ServeProcess;
let client: AuthzClient;
let token: string;

beforeAll(async () => {
  writeFileSync(
    config,
    `state: { remediation: { enabled: false } }
log:
  decisions: all
  decisions_sink: ${decisionsFile}
  decisions_sample_allow: ${SAMPLE}
  time: iso
  levels: label
policy:
  resources:
    orders: { sensitivity: low, classification: public }
    vault: { sensitivity: low, classification: restricted }
  routes:
    - { prefix: /api/orders, resource: orders }
    - { prefix: /vault, resource: vault }
`,
  );
  s = await startServe(['--dev', '--config', config]);
  client = authzClient(s.grpcAddress);
  await waitFor(async () => (await client.health('')) === 1, 10_000, 'SERVING');
  token = await signDevToken({ sub: 'alice', ttlS: 600, claims: { allowed_resources: ['orders', 'vault'], clearance_level: 'internal' } });
});
afterAll(async () => {
  client.close();
  s.proc.kill('SIGTERM');
  await s.exited;
});

const decisionLines = () =>
  existsSync(decisionsFile)
    ? readFileSync(decisionsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];

describe('decision log', () => {
  it('goes to its own sink with ISO time, label levels, every deny, sampled allows, policy hash, iss, aud, resource and trace ids', async () => {
    const denies: [Record<string, string>, string, string][] = [
      [{ traceparent: `00-${TRACE}-${SPAN}-01` }, TRACE, SPAN],
      [{ 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-sampled': '1' }, TRACE, SPAN],
      [{ b3: `a3ce929d0e0e4736-${SPAN}-1` }, '0000000000000000a3ce929d0e0e4736', SPAN],
    ];
    for (const [headers] of denies) {
      const r = await client.check(checkRequest({ token, path: '/vault/keys', headers, contextExtensions: { route: 'vault-api' } }));
      expect(r.response?.status.message).toBe('clearance_insufficient');
    }
    // Forged trace headers are not copied onto the line.
    await client.check(checkRequest({ token, path: '/vault/x', headers: { traceparent: '00-"injected"-x-01' } }));
    for (let i = 0; i < ALLOWS; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => client.check(checkRequest({ token }))));
      for (const r of batch) expect(r.response?.status.code).toBe(0);
    }
    await waitFor(() => decisionLines().filter((l) => l['allow'] === false).length === denies.length + 1, 10_000, 'every deny line');
    // pino writes asynchronously: wait until the sampled allows stop arriving.
    let n = -1;
    await waitFor(() => {
      const now = decisionLines().length;
      const settled = now === n;
      n = now;
      return settled;
    }, 10_000, 'the decision file to settle');
    const lines = decisionLines();
    const denied = lines.filter((l) => l['allow'] === false);
    const allowed = lines.filter((l) => l['allow'] === true);
    // Binomial(400, 0.25): mean 100, sd ≈ 8.7; these bounds are ±6 sd.
    expect(allowed.length).toBeGreaterThan(48);
    expect(allowed.length).toBeLessThan(152);
    for (const l of lines) {
      expect(l['msg']).toBe('decision');
      expect(l['level']).toBe('info');
      expect(String(l['time'])).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(l['policy_hash']).toMatch(/^[0-9a-f]{12}$/);
      expect(l['iss']).toBe(DEV_ISSUER);
      expect(l['aud']).toBe(DEV_AUDIENCE);
    }
    expect(allowed[0]).toMatchObject({ reason: 'allowed', resource: 'orders', sub: 'alice' });
    expect(denied.map((l) => [l['trace_id'], l['span_id']])).toEqual([...denies.map(([, t, sp]) => [t, sp]), [undefined, undefined]]);
    expect(denied[0]).toMatchObject({ reason: 'clearance_insufficient', resource: 'vault', route: { route: 'vault-api' }, path: '/vault/keys' });
    // Operational lines stay on stdout, decisions never do.
    expect(s.logs.some((l) => l['msg'] === 'zt-authz listening')).toBe(true);
    expect(s.logs.filter((l) => l['msg'] === 'decision')).toEqual([]);
    expect(s.logs.every((l) => l['level'] === 'info' || l['level'] === 'warn')).toBe(true);
  });
});
