import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { authzClient, checkRequest } from '../helpers/grpc.js';
import { runCli, startServe } from '../helpers/cli.js';
import { waitFor } from '../helpers/server.js';

const dir = mkdtempSync(join(tmpdir(), 'zt-devkeys-'));
const DEV_FILE = join(dir, 'dev.yaml');
writeFileSync(DEV_FILE, 'identity: { development_keys: true }\npolicy:\n  resources: { orders: { classification: public } }\n  routes: [{ prefix: /api/orders, resource: orders }]\n');
const PLAIN_FILE = join(dir, 'plain.yaml');
writeFileSync(PLAIN_FILE, 'policy:\n  resources: { orders: { classification: public } }\n  routes: [{ prefix: /api/orders, resource: orders }]\n');

// Each test runs several CLI processes one after another: generous on a busy shared machine.
describe('the public development keys', { timeout: 120_000 }, () => {
  it('a config file cannot turn them on (loader, serve and check-config all refuse it)', async () => {
    const r = loadConfig({ file: DEV_FILE, env: {} });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.join('\n')).toMatch(/identity\.development_keys: cannot be turned on from a config file/);

    const check = runCli(['check-config', DEV_FILE]);
    expect(check.code).toBe(1);
    expect(check.stderr).toContain('cannot be turned on from a config file');
    expect(check.stderr).toContain('serve --dev');

    const serve = runCli(['serve', '--config', DEV_FILE, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0']);
    expect(serve.code).toBe(1);
    expect(serve.stderr).toContain('cannot be turned on from a config file');
  });

  it('serve --dev turns them on for a file, on loopback, with the startup warning; a dev token is then accepted', async () => {
    const s = await startServe(['--dev', '--config', PLAIN_FILE]);
    const client = authzClient(s.grpcAddress);
    try {
      // The warning follows the listening line startServe resolves on: wait for it.
      await waitFor(() => s.logs.some((l) => l.level === 40 && String(l.msg).includes('DEVELOPMENT MODE') && String(l.msg).includes('--dev')), 10_000, 'the development-mode warning');
      await waitFor(async () => (await client.health('')) === 1, 10_000, 'SERVING');
      const token = runCli(['token', '--claims', '{"allowed_resources":["orders"]}']).stdout.trim();
      const res = await client.check(checkRequest({ token, path: '/api/orders/1' }));
      expect(res.response?.status.code).toBe(0);
    } finally {
      client.close();
      s.proc.kill('SIGTERM');
      await s.exited;
    }
  });

  it('is refused unless every listener is on loopback, for --dev and for the embedded demo alike', () => {
    for (const env of [{ ZT_AUTHZ_GRPC: '0.0.0.0:0' }, { ZT_AUTHZ_HTTP: '0.0.0.0:0' }]) {
      const embedded = loadConfig({ env });
      expect(embedded.ok).toBe(false);
      if (!embedded.ok) expect(embedded.errors.join('\n')).toMatch(/refused because server\.(grpc|http)\.address is 0\.0\.0\.0:0, not a loopback address/);
      const dev = loadConfig({ file: PLAIN_FILE, env, dev: true });
      expect(dev.ok).toBe(false);
    }
    const serve = runCli(['serve', '--grpc', '0.0.0.0:0', '--http', '127.0.0.1:0']);
    expect(serve.code).toBe(1);
    expect(serve.stderr).toContain('not a loopback address');
    // Loopback spellings and unix sockets are fine.
    for (const grpc of ['127.0.0.1:0', 'localhost:0', '[::1]:0', 'unix:/tmp/zt-dev.sock']) {
      expect(loadConfig({ env: { ZT_AUTHZ_GRPC: grpc } }).ok).toBe(true);
    }
    // The same file without --dev has no keys at all: it needs real issuers.
    const plain = loadConfig({ file: PLAIN_FILE, env: {} });
    expect(plain.ok).toBe(false);
    if (!plain.ok) expect(plain.errors.join('\n')).toContain('identity.issuers: at least one issuer is required');
  });
});
