import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { validate } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema/index.js';
import { DEMO_CONFIG } from '../../src/config/defaults.js';
import { signDevToken } from '../../src/identity/dev-token.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { UiSnapshot } from '../../src/ui/snapshot.js';
import { startServe, type ServeProcess } from '../helpers/cli.js';
import { authzClient, checkRequest, responseHeader, type AuthzClient } from '../helpers/grpc.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/server.js';
import { jwksOf, makeKey } from '../helpers/tokens.js';

/** The page's JSON API: who may read it, what the explain form may do, and the process group. */
const CLAIMS = { allowed_resources: ['orders'], clearance_level: 'internal' };
const withUi = (extra: Record<string, unknown> = {}): ConfigInput => ({ ...DEMO_CONFIG, server: { http: { ui: true } }, ...extra });

async function explain(base: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}/ui/api/explain`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('live page: off by default, loopback only unless a token is set', () => {
  it('is not served when off', async () => {
    const srv = await startTestServer();
    try {
      expect((await fetch(`${srv.httpUrl}/ui/`)).status).toBe(404);
      expect((await fetch(`${srv.httpUrl}/ui/api/snapshot`)).status).toBe(404);
    } finally {
      await srv.stop();
    }
  });

  it('serves the page with a strict CSP, and refuses a Host that is not loopback (DNS rebinding) or a cross-site fetch', async () => {
    const srv = await startTestServer(withUi());
    try {
      const page = await fetch(`${srv.httpUrl}/ui/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'self'/);
      expect(page.headers.get('x-content-type-options')).toBe('nosniff');
      expect(await page.text()).not.toMatch(/https?:\/\//);
      const ok = await fetch(`${srv.httpUrl}/ui/api/snapshot`);
      expect(ok.status).toBe(200);
      // fetch() will not send a forged Host; node:http will.
      const port = new URL(srv.httpUrl).port;
      const { request } = await import('node:http');
      const status = (headers: Record<string, string>) =>
        new Promise<number>((resolve, reject) => {
          request({ host: '127.0.0.1', port, path: '/ui/api/snapshot', headers }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          }).on('error', reject).end();
        });
      expect(await status({ host: 'attacker.example:' + port })).toBe(403);
      expect(await status({ host: `127.0.0.1:${port}`, 'sec-fetch-site': 'cross-site' })).toBe(403);
      expect(await status({ host: `localhost:${port}` })).toBe(200);
    } finally {
      await srv.stop();
    }
  });

  it('refuses to start on a listener that is not loopback without an access token, and then demands it', async () => {
    // The development keys are refused off loopback, so this server has a real (file) key set.
    const dir = mkdtempSync(join(tmpdir(), 'zt-ui-'));
    const jwksFile = join(dir, 'jwks.json');
    writeFileSync(jwksFile, JSON.stringify(jwksOf(makeKey('ES256', 'ui-test'))));
    const cfg = {
      ...DEMO_CONFIG,
      identity: { issuers: [{ issuer: 'https://idp.example', audiences: ['api'], algorithms: ['ES256'], keys: { jwks_file: jwksFile } }] },
      server: { grpc: { address: '127.0.0.1:0' }, http: { ui: true, address: '0.0.0.0:0' } },
      log: { decisions: 'none' },
    };
    const loaded = validate(cfg, 'test', false);
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    await expect(App.start(loaded, { logger: silentLogger })).rejects.toThrow(/ZT_AUTHZ_UI_TOKEN/);
    const app = await App.start(loaded, { logger: silentLogger, uiAccessToken: 's3cret-ui-token' });
    try {
      const base = `http://127.0.0.1:${app.httpAddress!.split(':').pop()}`;
      expect((await fetch(`${base}/ui/`)).status).toBe(200);
      const none = await fetch(`${base}/ui/api/snapshot`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await fetch(`${base}/ui/api/snapshot`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await explain(base, { path: '/' })).status).toBe(401);
      const good = await fetch(`${base}/ui/api/snapshot`, { headers: { authorization: 'Bearer s3cret-ui-token', host: 'anything.example' } });
      expect(good.status).toBe(200);
      expect(((await good.json()) as UiSnapshot).policy.hash).toBe(app.policyHash);
    } finally {
      await app.shutdown(1000);
    }
  });
});

describe('live page: ui_redact', () => {
  it('leaves user ids and client IPs out of the recent denies when asked', async () => {
    const srv = await startTestServer(withUi({ server: { http: { ui: true, ui_redact: ['user_id', 'client_ip'] } } }));
    try {
      const token = await signDevToken({ sub: 'alice', ttlS: 600, claims: CLAIMS });
      const r = await srv.client.check(checkRequest({ token, path: '/admin/users', sourceIp: '10.9.8.7' }));
      expect(r.response?.status.message).toBe('resource_not_allowed');
      let denies: UiSnapshot['live']['recent_denies'] = [];
      await waitFor(async () => {
        denies = ((await (await fetch(`${srv.httpUrl}/ui/api/snapshot`)).json()) as UiSnapshot).live.recent_denies;
        return denies.length > 0;
      }, 10_000, 'the deny on the page');
      expect(denies[0]).toMatchObject({ reason: 'resource_not_allowed', user: '(hidden)', ip: '(hidden)' });
      expect(JSON.stringify(denies)).not.toContain('alice');
      expect(JSON.stringify(denies)).not.toContain('10.9.8.7');
    } finally {
      await srv.stop();
    }
  });
});

describe('live page: the explain form', () => {
  let srv: TestServer;
  let logged = '';
  beforeAll(async () => {
    const sink = new Writable({ write: (c: Buffer, _e, cb) => ((logged += c.toString()), cb()) });
    srv = await startTestServer(withUi({ state: { backend: 'memory', remediation: { enabled: true, threshold: 2, window_s: 60, block_ttl_s: 60 } } }), {
      logger: pino({ level: 'debug' }, sink),
    });
  });
  afterAll(async () => srv?.stop());

  it('gives the same trace as the CLI, counts no strike against the IP it names, and never logs the token', async () => {
    const token = await signDevToken({ sub: 'alice', ttlS: 600, claims: CLAIMS });
    const allow = await explain(srv.httpUrl, { method: 'get', path: '/api/orders/42', host: 'localhost', ip: '10.0.0.7', token });
    expect(allow.status).toBe(200);
    expect(allow.body).toMatchObject({ decision: 'allow', reason: 'allowed', http_status: 200, policy_hash: srv.app.policyHash });
    expect((allow.body.trace as { check: string }[]).map((t) => t.check)).toEqual(expect.arrayContaining(['readiness', 'ip_block', 'token', 'route', 'resource']));

    const forged = token.slice(0, -6) + 'AAAAAA';
    for (let i = 0; i < 5; i++) {
      const r = await explain(srv.httpUrl, { path: '/api/orders', ip: '10.0.0.66', token: forged });
      expect(r.body.reason).toBe('token_invalid');
    }
    // The same forgeries sent by a client through gRPC do block that address…
    for (let i = 0; i < 2; i++) await srv.client.check(checkRequest({ token: forged, sourceIp: '10.0.0.77' }));
    await waitFor(async () => (await srv.client.check(checkRequest({ token, sourceIp: '10.0.0.77' }))).response?.status.message === 'ip_blocked', 10_000, 'auto-block');
    // …while the explained ones did not.
    const clean = await srv.client.check(checkRequest({ token, sourceIp: '10.0.0.66' }));
    expect(responseHeader(clean.response, 'x-zt-authz-reason') ?? 'allowed').toBe('allowed');
    expect(logged).not.toContain(token.split('.')[2]!);
    expect(logged).not.toContain(forged.split('.')[2]!);
  });

  it('verifies the pasted token without putting it in the token cache', async () => {
    const fresh = await signDevToken({ sub: 'carol', ttlS: 600, claims: CLAIMS });
    expect((await explain(srv.httpUrl, { path: '/api/orders', token: fresh })).body.reason).toBe('allowed');
    const counts = srv.app.metrics.tokenCacheCounts;
    const misses = counts.miss;
    const r = await srv.client.check(checkRequest({ token: fresh }));
    expect(r.response?.status.code).toBe(0);
    expect(counts.miss).toBe(misses + 1);
    await srv.client.check(checkRequest({ token: fresh }));
    expect(counts.miss).toBe(misses + 1);
  });

  it('answers bad input with a 4xx and no decision', async () => {
    const text = await fetch(`${srv.httpUrl}/ui/api/explain`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
    expect(text.status).toBe(415);
    expect((await explain(srv.httpUrl, { path: 7 })).status).toBe(400);
    expect((await explain(srv.httpUrl, { token: 'x'.repeat(20_000) })).status).toBe(400);
    const big = await fetch(`${srv.httpUrl}/ui/api/explain`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(100_000) }).catch(() => undefined);
    expect(big === undefined || big.status === 413).toBe(true);
    expect((await fetch(`${srv.httpUrl}/ui/api/explain`)).status).toBe(405);
    const bad = await explain(srv.httpUrl, { path: '/a/%2e%2e/b' });
    expect(bad.status).toBe(200);
    expect(bad.body.decision).toBe('deny');
  });
});

describe('live page with serve --workers 2', () => {
  let redis: RedisProcess;
  let serve: ServeProcess;
  let clients: AuthzClient[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    serve = await startServe(['--workers', '2', '--ui', '--redis', redis.url]);
  }, 90_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    serve?.proc.kill('SIGTERM');
    await serve?.exited;
    await redis?.stop();
  });

  it('shows the decisions of the whole process group', async () => {
    const token = await signDevToken({ sub: 'alice', ttlS: 600, claims: CLAIMS });
    const prefixes = new Set<string>();
    const denied = new Set<string>();
    let sent = 0;
    await waitFor(async () => {
      // The primary hands connections round-robin to the workers listening when they arrive: new
      // connections each round until the second worker is up and has taken some.
      for (const c of clients) c.close();
      clients = Array.from({ length: 6 }, () => authzClient(serve.grpcAddress, { 'grpc.use_local_subchannel_pool': 1 }));
      await Promise.all(
        clients.map(async (c) => {
          const r = await c.check(checkRequest({ token }));
          if (r.response?.status.code === 0) sent++;
          else denied.add(responseHeader(r.response, 'x-zt-authz-reason') ?? String(r.response?.status.code));
          const id = responseHeader(r.response, 'x-auth-decision-id');
          if (id) prefixes.add(id.slice(0, id.indexOf('-')));
        }),
      );
      // At least one allow too: a worker still catching up with Redis under load denies
      // (dependency_unavailable), and with no allow at all there is nothing for the page to count.
      return prefixes.size === 2 && sent > 0;
    }, 60_000, 'both workers answering').catch((err: Error) => {
      throw new Error(`${err.message} (answered ${sent}; denied with ${[...denied].join(', ') || 'nothing'})`);
    });
    // Counts land in the second they were made; the page shows whole seconds only.
    let seen = '';
    await waitFor(async () => {
      const s = (await (await fetch(`http://${serve.httpAddress}/ui/api/snapshot`)).json()) as UiSnapshot;
      // /metrics sums the workers by its own path (prom-client's aggregator): the two must agree. A call
      // the client gave up on under load may still have been decided, so the server can count more than `sent`.
      const metrics = await (await fetch(`http://${serve.httpAddress}/metrics`)).text();
      const allowed = Number(/^zt_authz_decisions_total\{[^}]*reason="allowed"[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? NaN);
      seen = `${s.workers} workers, ${s.live.totals.allowed} allows on the page, ${allowed} in /metrics, ${sent} answered`;
      return s.workers === 2 && s.live.totals.allowed === allowed && allowed >= sent;
    }, 60_000, 'the snapshot to count every allow of both workers').catch((err: Error) => {
      throw new Error(`${err.message} (last: ${seen})`);
    });
  }, 150_000);
});
