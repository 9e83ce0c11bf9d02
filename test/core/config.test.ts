import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'zt-config-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const VALID = `
identity:
  issuers:
    - issuer: https://idp.example.com
      audiences: [orders-api]
      keys: { jwks_uri: https://idp.example.com/jwks.json }
policy:
  resources:
    orders: { sensitivity: medium, classification: internal }
  routes:
    - { prefix: /api/orders, resource: orders }
`;

describe('loadConfig', () => {
  it('uses the embedded demo config when no file is named', () => {
    const r = loadConfig({ env: {} });
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.embedded).toBe(true);
      expect(r.config.identity.development_keys).toBe(true);
      expect(r.config.server.grpc.address).toBe('127.0.0.1:9191');
      expect(r.config.state.backend).toBe('memory');
    }
  });

  it('loads a valid file with defaults filled in and a stable hash', () => {
    const p = file('valid.yaml', VALID);
    const a = loadConfig({ file: p, env: {} });
    const b = loadConfig({ file: p, env: {} });
    expect(a.ok && b.ok).toBe(true);
    if (a.ok && b.ok) {
      expect(a.embedded).toBe(false);
      expect(a.config.identity.issuers[0]!.algorithms).toEqual(['RS256', 'ES256', 'EdDSA', 'PS256']);
      expect(a.config.identity.clock_skew_s).toBe(60);
      expect(a.hash).toMatch(/^[0-9a-f]{12}$/);
      expect(a.hash).toBe(b.hash);
    }
  });

  it('reports every error at once, each with its path', () => {
    const p = file(
      'invalid.yaml',
      `
server:
  grpc: { address: nonsense }
identity:
  clock_skew_s: -1
  issuers:
    - issuer: https://idp
      audiences: []
      keys: {}
      algorithms: [none]
state:
  backend: redis
policy:
  routes:
    - { prefix: /x, resource: missing }
  unknown_key: true
`,
    );
    const r = loadConfig({ file: p, env: {} });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      const text = r.errors.join('\n');
      expect(text).toContain('server.grpc.address');
      expect(text).toContain('identity.clock_skew_s');
      expect(text).toContain('identity.issuers.0.audiences');
      expect(text).toContain('identity.issuers.0.algorithms.0');
      expect(text).toContain('policy');
      expect(text).toMatch(/unknown_key/);
      expect(r.errors.length).toBeGreaterThanOrEqual(5);
    }
  });

  it('rejects YAML syntax errors and duplicate keys with the file name', () => {
    const r1 = loadConfig({ file: file('syntax.yaml', 'identity: [unclosed'), env: {} });
    const r2 = loadConfig({ file: file('dup.yaml', 'log: {level: info}\nlog: {level: debug}\n'), env: {} });
    expect(r1.ok).toBe(false);
    expect(r2.ok).toBe(false);
    if (!r1.ok) expect(r1.errors[0]).toContain('syntax.yaml');
    if (!r2.ok) expect(r2.errors.join()).toMatch(/unique|duplicate/i);
  });

  it('refuses development keys together with real issuers', () => {
    const r = loadConfig({ file: file('mixed.yaml', VALID + '\n' + ''), env: {} });
    expect(r.ok).toBe(true);
    const p = file('mixed2.yaml', VALID.replace('identity:\n', 'identity:\n  development_keys: true\n'));
    const r2 = loadConfig({ file: p, env: {} });
    expect(r2.ok).toBe(false);
    if (!r2.ok) expect(r2.errors.join()).toContain('development_keys');
  });

  it('lets the environment override the file, and flags override the environment', () => {
    const p = file('env.yaml', VALID);
    const env = { ZT_AUTHZ_GRPC: '0.0.0.0:9000', ZT_AUTHZ_HTTP: '0.0.0.0:9001', ZT_AUTHZ_REDIS: 'redis://10.0.0.5:6379', ZT_AUTHZ_LOG_LEVEL: 'debug' };
    const r = loadConfig({ file: p, env });
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.config.server.grpc.address).toBe('0.0.0.0:9000');
      expect(r.config.server.http.address).toBe('0.0.0.0:9001');
      expect(r.config.state.backend).toBe('redis');
      expect(r.config.state.redis.url).toBe('redis://10.0.0.5:6379');
      expect(r.config.log.level).toBe('debug');
    }
    const f = loadConfig({ file: p, env, flags: { grpc: 'unix:/tmp/zt.sock' } });
    expect(f.ok && f.config.server.grpc.address).toBe('unix:/tmp/zt.sock');
  });

  it('names the file it cannot read', () => {
    const r = loadConfig({ file: join(dir, 'nope.yaml'), env: {} });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]).toContain('nope.yaml');
  });
});
