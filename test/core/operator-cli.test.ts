import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CLI, runCli, startServe } from '../helpers/cli.js';
import { startJwksServer } from '../helpers/jwks-server.js';

const dir = mkdtempSync(join(tmpdir(), 'zt-operator-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
const ORDERS = '{"allowed_resources":["orders","payments"],"clearance_level":"confidential"}';

/** The CLI as a child process without blocking this process's event loop (an in-process JWKS server must answer it). */
function runCliAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const issuer = (keys: string, extra = '') => `identity:\n  issuers:\n    - issuer: https://idp.example.com\n      audiences: [a]\n      keys: ${keys}\n${extra}`;

// Each test runs several CLI processes one after another: generous on a busy shared machine.
describe('explain tells the root cause and agrees with serve', { timeout: 120_000 }, () => {
  it('prints why the keys could not be loaded: a missing jwks_file', async () => {
    const f = file('missing-jwks.yaml', issuer('{ jwks_file: /nonexistent/zt/jwks.json }'));
    const r = await runCliAsync(['explain', '--config', f, '--token', 'a.b.c']);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('dependency_unavailable');
    expect(r.stdout).toMatch(/why some checks could not run:\n {2}- JWKS load failed.*ENOENT.*\/nonexistent\/zt\/jwks\.json/);
    const json = JSON.parse((await runCliAsync(['explain', '--config', f, '--token', 'a.b.c', '--json'])).stdout) as { problems: string[] };
    expect(json.problems.join('\n')).toContain('ENOENT');
  });

  it('prints why the keys could not be loaded: an OIDC discovery issuer mismatch', async () => {
    const idp = await startJwksServer({ discoveryIssuer: 'https://someone-else.example' });
    try {
      const f = file('mismatch.yaml', `identity:\n  issuers:\n    - issuer: ${idp.issuer}\n      audiences: [a]\n      keys: { discovery: true }\n`);
      const r = await runCliAsync(['explain', '--config', f, '--token', 'a.b.c']);
      expect(r.code).toBe(3);
      expect(r.stdout).toContain('why some checks could not run');
      expect(r.stdout).toContain('someone-else.example');
    } finally {
      await idp.close();
    }
  });

  it('the policy hash of explain and check-config equals the one serve reports, whatever the listen addresses', async () => {
    const explain = JSON.parse(runCli(['explain', '--json']).stdout) as { policy_hash: string };
    const s = await startServe([]);
    try {
      const listening = s.logs.find((l) => l.msg === 'zt-authz listening')!;
      expect(listening.policy_hash).toBe(explain.policy_hash);
    } finally {
      s.proc.kill('SIGTERM');
      await s.exited;
    }
    const demo = file('demo.yaml', runCli(['demo-config']).stdout);
    expect(runCli(['check-config', '--dev', demo]).stdout).toContain(`OK (policy hash ${explain.policy_hash})`);
  });

  it('--at judges the policy at that time and the token on the real clock, so a fresh token works', () => {
    const token = runCli(['token', '--claims', ORDERS]).stdout.trim();
    const past = runCli(['explain', '--token', token, '--path', '/api/orders/1', '--at', '2020-01-04T12:00:00Z']);
    expect(past.stdout).toMatch(/^ALLOW allowed/);
    expect(past.stdout).toContain('token times: real clock');
    // Saturday: the payments window (mon–fri) is what denies, not the token's times.
    const json = JSON.parse(runCli(['explain', '--token', token, '--path', '/api/payments', '--at', '2020-01-04T12:00:00Z', '--json']).stdout) as {
      reason: string;
      trace: { check: string; verdict: string }[];
    };
    expect(json.reason).toBe('outside_time_window');
    expect(json.trace.find((t) => t.check === 'token')?.verdict).toBe('pass');
  });
});

describe('every command handles a closed stdout quietly', { timeout: 120_000 }, () => {
  it.each([
    ['explain', '--path', '/admin'],
    ['config-schema'],
    ['demo-config'],
    ['--help'],
  ])('%s … | true: no EPIPE stack trace, the command keeps its exit status', (...args) => {
    // `true` exits without reading: the CLI's writes hit a closed pipe.
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" ${args.map((a) => `'${a}'`).join(' ')} | true; echo "exit=\${PIPESTATUS[0]}" >&2`], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled|at /);
    expect(r.stderr).toMatch(args[0] === 'explain' ? /exit=3/ : /exit=0/);
  });
});

describe('token --claims iat/exp', { timeout: 120_000 }, () => {
  it('keeps a given iat and exp, refuses exp before iat and exp together with --ttl', () => {
    const r = runCli(['token', '--claims', '{"iat":1700000000,"exp":1700000600}']);
    expect(r.code).toBe(0);
    expect(decodeJwt(r.stdout.trim())).toMatchObject({ iat: 1700000000, exp: 1700000600 });
    const fromIat = decodeJwt(runCli(['token', '--ttl', '60', '--claims', '{"iat":1700000000}']).stdout.trim());
    expect(fromIat).toMatchObject({ iat: 1700000000, exp: 1700000060 });
    const backwards = runCli(['token', '--claims', '{"iat":1700000000,"exp":1600000000}']);
    expect(backwards.code).toBe(2);
    expect(backwards.stderr).toContain('exp (1600000000) must be after iat (1700000000)');
    const both = runCli(['token', '--ttl', '5', '--claims', '{"exp":1900000000}']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('say the expiry once');
    expect(runCli(['token', '--claims', '{"exp":"tomorrow"}']).code).toBe(2);
  });
});

describe('check-config catches what would bite at run time', { timeout: 120_000 }, () => {
  const rules: [string, string, RegExp][] = [
    [
      'duplicate issuers',
      `identity:\n  issuers:\n    - { issuer: https://idp.example.com, audiences: [a], keys: { jwks_uri: https://idp.example.com/j } }\n    - { issuer: https://idp.example.com, audiences: [b], keys: { jwks_uri: https://idp.example.com/k } }\n`,
      /identity\.issuers\.1\.issuer: "https:\/\/idp\.example\.com" is already configured as identity\.issuers\.0/,
    ],
    ['jwks_uri and discovery', issuer('{ jwks_uri: https://idp.example.com/j, discovery: true }'), /set jwks_uri or discovery, not both/],
    ['http:// JWKS off loopback', issuer('{ jwks_uri: http://idp.example.com/jwks }'), /jwks_uri: http:\/\/ to a non-loopback host/],
    [
      'http:// discovery off loopback',
      `identity:\n  issuers:\n    - { issuer: http://idp.example.com, audiences: [a], keys: { discovery: true } }\n`,
      /keys\.discovery: the issuer is http:\/\/ on a non-loopback host/,
    ],
    ['a port above 65535', issuer('{ jwks_uri: https://idp.example.com/j }', 'server:\n  grpc: { address: 127.0.0.1:70000 }\n'), /server\.grpc\.address: the port must be 0 to 65535/],
    [
      'a duplicate route',
      issuer('{ jwks_uri: https://idp.example.com/j }', 'policy:\n  resources: { a: {}, b: {} }\n  routes:\n    - { prefix: /api, resource: a }\n    - { prefix: /api, resource: b }\n'),
      /policy\.routes\.1: prefix \/api → b duplicates policy\.routes\.0/,
    ],
    [
      'a shadowed route',
      issuer(
        '{ jwks_uri: https://idp.example.com/j }',
        'policy:\n  resources: { a: {}, b: {} }\n  routes:\n    - { prefix: /api, resource: a }\n    - { path: /api/orders, methods: [GET], resource: b }\n',
      ),
      /policy\.routes\.1: path \/api\/orders methods GET → b can never match: it is shadowed by policy\.routes\.0 \(prefix \/api → a\)/,
    ],
    ['a misspelt key', issuer('{ jwks_uri: https://idp.example.com/j }', 'policy:\n  resorces: {}\n'), /policy: unknown key "resorces" \(did you mean "resources"\?\)/],
  ];
  it.each(rules)('%s is an error', (_name, text, message) => {
    const f = file(`rule-${_name.replace(/\W+/g, '-')}.yaml`, text);
    const r = runCli(['check-config', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
  });

  it('narrower routes first, or disjoint methods and hosts, are not shadowed', () => {
    const f = file(
      'routes-ok.yaml',
      issuer(
        '{ jwks_uri: https://idp.example.com/j }',
        'policy:\n  resources: { a: {}, b: {} }\n  routes:\n    - { path: /api/orders, resource: b }\n    - { prefix: /api, methods: [GET], resource: a }\n    - { prefix: /api, methods: [POST], resource: b }\n    - { prefix: /api, host: x.example.com, resource: a }\n    - { pattern: "/api/*/items", resource: b }\n    - { prefix: /api, resource: b }\n',
      ),
    );
    const r = runCli(['check-config', f]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('an unset hs256_secret_env and a missing jwks_file are printed warnings (they may exist where the server runs)', () => {
    const f = file(
      'env-warnings.yaml',
      `identity:\n  issuers:\n    - { issuer: https://hs.example.com, audiences: [a], algorithms: [HS256], keys: { hs256_secret_env: ZT_TEST_SURELY_UNSET_SECRET } }\n    - { issuer: https://file.example.com, audiences: [a], keys: { jwks_file: /nonexistent/zt/jwks.json } }\n`,
    );
    const r = runCli(['check-config', '--config', f], { ZT_TEST_SURELY_UNSET_SECRET: '' });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/warning: identity\.issuers\.0\.keys\.hs256_secret_env: ZT_TEST_SURELY_UNSET_SECRET is not set in this environment/);
    expect(r.stdout).toMatch(/warning: identity\.issuers\.1\.keys\.jwks_file: \/nonexistent\/zt\/jwks\.json does not exist here/);
  });

  it('config-schema prints a JSON Schema generated from the zod schema; demo-config prints YAML that validates with --dev', () => {
    const schema = JSON.parse(runCli(['config-schema']).stdout) as { $schema: string; properties: Record<string, { properties?: Record<string, unknown> }> };
    expect(schema.$schema).toContain('json-schema.org');
    expect(Object.keys(schema.properties).sort()).toEqual(['identity', 'log', 'network', 'policy', 'server', 'state', 'tracing']);
    expect(schema.properties.identity!.properties).toHaveProperty('issuers');
    expect(schema.properties.identity!.properties).not.toHaveProperty('development_keys');
    const demo = runCli(['demo-config']);
    expect(demo.stdout).toMatch(/^# yaml-language-server: \$schema=/);
    expect(parseYaml(demo.stdout)).toHaveProperty('policy.routes');
    const f = file('demo-out.yaml', demo.stdout);
    expect(runCli(['check-config', '--dev', f]).code).toBe(0);
    expect(runCli(['check-config', f]).stderr).toContain('identity.issuers: at least one issuer is required');
  });
});
