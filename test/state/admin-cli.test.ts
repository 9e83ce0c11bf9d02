import { mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { freePort, startRedis, type RedisProcess } from '../helpers/redis.js';
import { admin, plainClient } from './fixtures.js';

describe('admin CLI', () => {
  let redis: RedisProcess;
  let r: Redis;
  let url: string[];

  beforeAll(async () => {
    redis = await startRedis();
    r = plainClient(redis.url);
    await r.connect();
    url = ['--redis', redis.url];
  });
  afterAll(async () => {
    r?.disconnect();
    await redis?.stop();
  });

  it('suspend / unsuspend', async () => {
    const s = await admin('suspend', 'bob', '--ttl', '120', '--reason', 'credential stuffing', ...url);
    expect(s).toMatchObject({ code: 0, err: '' });
    expect(s.out).toContain('suspended: suspended_user:bob, ttl 120s');
    expect(await r.get('suspended_user:bob')).toBe('true');
    expect(await r.ttl('suspended_user:bob')).toBeGreaterThan(110);
    const alert = JSON.parse((await r.lindex('security_alerts', 0)) ?? '{}') as Record<string, unknown>;
    expect(alert).toMatchObject({ type: 'admin_suspend', user: 'bob', reason: 'credential stuffing' });
    expect((await admin('suspend', 'carol', ...url)).out).toContain('ttl 3600s');
    const u = await admin('unsuspend', 'bob', ...url);
    expect(u.code).toBe(0);
    expect(u.out).toContain('unsuspended: suspended_user:bob');
    expect(await r.exists('suspended_user:bob')).toBe(0);
    expect((await admin('unsuspend', 'bob', ...url)).out).toContain('(was not set)');
  });

  it('block / unblock IPs and CIDRs in canonical form', async () => {
    expect((await admin('block', '10.0.0.0/8', '--ttl', '60', ...url)).out).toContain('blocked: blocked_cidr:10.0.0.0/8, ttl 60s');
    expect((await admin('block', '2001:DB8::0:1', ...url)).out).toContain('blocked: blocked_ip:2001:db8::1, ttl 1800s');
    expect(await r.ttl('blocked_ip:2001:db8::1')).toBeGreaterThan(1790);
    expect((await admin('unblock', '2001:db8::1', ...url)).code).toBe(0);
    expect(await r.exists('blocked_ip:2001:db8::1')).toBe(0);
    // A spelling another tool wrote is removed too.
    await r.set('blocked_ip:2001:DB8::7', 'true');
    await admin('unblock', '2001:DB8::7', ...url);
    expect(await r.exists('blocked_ip:2001:DB8::7')).toBe(0);
  });

  it('risk with and without TTL', async () => {
    expect((await admin('risk', 'alice', '0.9', '--ttl', '30', ...url)).out).toContain('risk set: user_risk:alice, score 0.9, ttl 30s');
    expect(await r.hget('user_risk:alice', 'score')).toBe('0.9');
    expect(await r.ttl('user_risk:alice')).toBeGreaterThan(25);
    expect((await admin('risk', 'alice', '0.3', ...url)).out).toContain('no expiry');
    expect(await r.ttl('user_risk:alice')).toBe(-1);
  });

  it('list, in text and JSON, with --prefix and ZT_AUTHZ_REDIS', async () => {
    const text = await admin('list', ...url);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/suspended_user\s+carol\s+\(ttl \d+s\)/);
    expect(text.out).toMatch(/user_risk\s+alice\s+score 0.3\s+\(no expiry\)/);
    expect(text.out).toMatch(/blocked_cidr\s+10.0.0.0\/8/);
    process.env.ZT_AUTHZ_REDIS = redis.url;
    try {
      expect((await admin('suspend', 'pat', '--prefix', 'prod:')).code).toBe(0);
      const json = JSON.parse((await admin('list', '--json', '--prefix', 'prod:')).out) as unknown[];
      expect(json).toEqual([expect.objectContaining({ kind: 'suspended_user', id: 'pat' })]);
    } finally {
      delete process.env.ZT_AUTHZ_REDIS;
    }
    expect(await r.exists('prod:suspended_user:pat')).toBe(1);
  });

  it('rejects invalid input with exit 2 and writes nothing', async () => {
    const before = await r.dbsize();
    const alerts = await r.llen('security_alerts');
    const bad: string[][] = [
      ['block', '999.1.1.1'],
      ['block', '10.0.0.0/33'],
      ['block', '10.1.0.0/8'],
      ['block', 'example.com'],
      ['block', '10.0.0.1', '--ttl', 'abc'],
      ['block', '10.0.0.1', '--ttl', '0'],
      ['block', '10.0.0.1', '--ttl', '-5'],
      ['block', '10.0.0.1', '--ttl', '1.5'],
      ['suspend', 'bob', '--ttl', '99999999999'],
      ['suspend', 'bob smith'],
      ['suspend', ''],
      ['suspend'],
      ['suspend', 'a', 'b'],
      ['risk', 'alice', '1.5'],
      ['risk', 'alice', 'abc'],
      ['risk', 'alice', 'NaN'],
      ['risk', 'alice', '-0.1'],
      ['risk', 'alice'],
      ['unblock', '1.2.3'],
      ['suspend', 'bob', '--bogus'],
      ['unsuspend', 'bob', '--ttl', '5'],
      ['frobnicate'],
    ];
    for (const argv of bad) {
      const res = await admin(...argv, ...url);
      expect(res.code, argv.join(' ')).toBe(2);
      expect(res.err, argv.join(' ')).toMatch(/invalid|expected|unknown|does not apply|Unknown option/i);
      expect(res.out).toBe('');
    }
    expect(await r.dbsize()).toBe(before);
    expect(await r.llen('security_alerts')).toBe(alerts);
    expect(await r.exists('suspended_user:bob smith')).toBe(0);
    const badUrl = await admin('list', '--redis', 'http://x');
    expect(badUrl.code).toBe(2);
  });

  it('reports an unreachable Redis with exit 1, promptly', async () => {
    const port = await freePort();
    const t = Date.now();
    const res = await admin('suspend', 'bob', '--redis', `redis://127.0.0.1:${port}`);
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/Redis error/);
    expect(Date.now() - t).toBeLessThan(5000);
  });

  it('reads the Redis URL and key prefix from --config; --redis and --prefix still win', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zt-admin-'));
    const cfg = join(dir, 'config.yaml');
    writeFileSync(
      cfg,
      `identity:\n  issuers: [{ issuer: https://idp.example.com, audiences: [a], keys: { jwks_uri: https://idp.example.com/j } }]\nstate:\n  backend: redis\n  redis: { url: ${JSON.stringify(redis.url)}, key_prefix: 'cfg:' }\n`,
    );
    expect((await admin('suspend', 'dana', '--config', cfg)).code).toBe(0);
    expect(await r.exists('cfg:suspended_user:dana')).toBe(1);
    expect((await admin('suspend', 'erin', '--config', cfg, '--prefix', 'other:')).code).toBe(0);
    expect(await r.exists('other:suspended_user:erin')).toBe(1);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'state: { backend: redis, redis: { url: nope } }\n');
    const res = await admin('list', '--config', bad);
    expect(res.code).toBe(2);
    expect(res.err.trim().split('\n')).toHaveLength(1);
    expect(res.err).toContain('invalid config');
  });

  it('errors are one line naming the command once; --ttl -5 gets our message', async () => {
    for (const argv of [['suspend'], ['block', '10.0.0.1', '--ttl', '-5'], ['suspend', 'bob', '--bogus'], ['risk', 'alice', '2']]) {
      const res = await admin(...argv, ...url);
      expect(res.code, argv.join(' ')).toBe(2);
      expect(res.err.trim().split('\n'), argv.join(' ')).toHaveLength(1);
      expect(res.err.match(new RegExp(`${argv[0]}:`, 'g')), argv.join(' ')).toHaveLength(1);
    }
    expect((await admin('suspend', ...url)).err).toBe('zt-authz suspend: expected <user> (zt-authz suspend --help for usage)\n');
    expect((await admin('block', '10.0.0.1', '--ttl', '-5', ...url)).err).toContain('invalid --ttl "-5": expected whole seconds');
  });

  it('unrisk clears a live risk score; list --json has one ttl_s field; alerts record the OS user and host', async () => {
    await admin('risk', 'frank', '0.95', '--ttl', '300', ...url);
    await admin('risk', 'gina', '0.5', ...url);
    const listed = JSON.parse((await admin('list', '--json', ...url)).out) as Record<string, unknown>[];
    const frank = listed.find((e) => e.id === 'frank')!;
    expect(Object.keys(frank).sort()).toEqual(['id', 'kind', 'score', 'ttl_s']);
    expect(frank.ttl_s).toBeGreaterThan(290);
    expect(listed.find((e) => e.id === 'gina')!.ttl_s).toBeNull();
    const cleared = await admin('unrisk', 'frank', ...url);
    expect(cleared).toMatchObject({ code: 0, err: '' });
    expect(cleared.out).toContain('risk cleared: user_risk:frank');
    expect(await r.exists('user_risk:frank')).toBe(0);
    expect((await admin('unrisk', 'frank', ...url)).out).toContain('(was not set)');
    const alert = JSON.parse((await r.lindex('security_alerts', 0)) ?? '{}') as Record<string, unknown>;
    expect(alert).toMatchObject({ type: 'admin_unrisk', user: 'frank', by_user: userInfo().username, by_host: hostname() });
  });

  it('prints help', async () => {
    const h = await admin('suspend', '--help');
    expect(h.code).toBe(0);
    expect(h.out).toContain('zt-authz block <ip|cidr>');
  });
});
