import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema/index.js';
import { checkRequest } from '../helpers/grpc.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/server.js';
import { jwksOf, makeKey, tokenFactory } from '../helpers/tokens.js';
import { isAllow, isDecision, loadLoop, reasonOf } from './support.js';

/**
 * Redis and the JWKS endpoint down at the same time, with load running: a real redis-server
 * (SIGKILLed) and a real JWKS server (hanging). Within max_staleness_s the last good state and
 * keys serve (fail_static); past it every check fails closed; a suspended user and a forged key
 * are never allowed at any point; both coming back restores service without a restart.
 */
const AUD = 'orders-api';
const CLAIMS = { allowed_resources: ['orders'] };
const k1 = makeKey('RS256', 'k1');
const attacker = makeKey('RS256', 'attacker');

let redis: RedisProcess | undefined;
let jwks: JwksServer | undefined;
let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.stop();
  await jwks?.close();
  await redis?.stop();
  srv = jwks = redis = undefined;
});

function config(jwksServer: JwksServer, redisUrl: string): ConfigInput {
  return {
    identity: {
      issuers: [{ issuer: jwksServer.issuer, audiences: [AUD], algorithms: ['RS256'], keys: { jwks_uri: jwksServer.jwksUri, refresh_interval_s: 0.5, fetch_timeout_ms: 300, unknown_kid_cooldown_s: 0.3, unknown_kid_wait_ms: 100 } }],
    },
    state: { backend: 'redis', redis: { url: redisUrl, heartbeat_interval_ms: 200 }, max_staleness_s: 1.5, remediation: { enabled: false } },
    policy: { resources: { orders: { sensitivity: 'low', classification: 'public' } }, routes: [{ prefix: '/', resource: 'orders' }] },
  };
}

describe('Redis and JWKS down together, under load', () => {
  it('serves last good state within max_staleness_s, fails closed past it, never allows a suspended user or a forged key, recovers', async () => {
    redis = await startRedis();
    jwks = await startJwksServer({ jwks: jwksOf(k1) });
    await redis.cli('SET', 'suspended_user:mallory', 'true');
    srv = await startTestServer(config(jwks, redis.url));
    const tf = tokenFactory(jwks.issuer, AUD);
    const alice = Array.from({ length: 50 }, (_, i) => tf.mint({ key: k1, claims: { ...CLAIMS, jti: `a${i}` } }));
    const mallory = tf.mint({ key: k1, claims: { ...CLAIMS, sub: 'mallory' } });
    const r0 = await srv.client.check(checkRequest({ token: mallory }));
    expect(reasonOf(r0)).toBe('user_suspended');

    let n = 0;
    const load = loadLoop(srv.client, () => {
      const i = n++;
      if (i % 4 === 1) return { label: 'mallory', req: checkRequest({ token: mallory }) };
      if (i % 4 === 3) return { label: 'forged', req: checkRequest({ token: tf.mint({ key: attacker, header: { kid: i % 8 === 3 ? k1.kid : `new-${i}` }, claims: CLAIMS }) }) };
      return { label: 'alice', req: checkRequest({ token: alice[i % alice.length]! }) };
    });
    await new Promise((r) => setTimeout(r, 200));

    const downAt = performance.now();
    await redis.kill('SIGKILL');
    jwks.setFault('hang');

    // Past max_staleness_s (1.5 s) the mirror is no longer trusted.
    let closedAt = 0;
    await waitFor(
      async () => {
        const r = await srv!.client.check(checkRequest({ token: alice[0]! }), { deadlineMs: 1000 });
        if (reasonOf(r) === 'dependency_unavailable') closedAt = performance.now();
        return closedAt > 0;
      },
      8000,
      'checks to fail closed past max_staleness_s',
    );
    await new Promise((r) => setTimeout(r, 300));

    // Both come back.
    await redis.restart();
    await redis.cli('SET', 'suspended_user:mallory', 'true');
    jwks.setFault('none');
    await waitFor(async () => isAllow(await srv!.client.check(checkRequest({ token: alice[1]! }), { deadlineMs: 1000 })), 15_000, 'recovery');
    const samples = await load.stop();

    expect(samples.length).toBeGreaterThan(50);
    expect(samples.filter((s) => !isDecision(s.result)).map((s) => s.result), 'checks without a decision before the deadline').toEqual([]);
    expect(samples.filter((s) => s.label !== 'alice' && isAllow(s.result)).map((s) => s.label)).toEqual([]);

    const alices = samples.filter((s) => s.label === 'alice');
    // Within the bound: the last good keys and state still decide (fail_static), so alice is served.
    const early = alices.filter((s) => s.startedMs > downAt && s.startedMs + s.ms < downAt + 1000);
    expect(early.length).toBeGreaterThan(0);
    expect(early.every((s) => isAllow(s.result))).toBe(true);
    // Past the bound, and until recovery: nothing is allowed.
    const closed = alices.filter((s) => s.startedMs > closedAt && s.startedMs < closedAt + 300);
    expect(closed.length).toBeGreaterThan(0);
    expect(closed.filter((s) => isAllow(s.result))).toEqual([]);
    expect(new Set(closed.map((s) => reasonOf(s.result)))).toEqual(new Set(['dependency_unavailable']));
    // After recovery the suspension written to the new Redis is honoured.
    expect(reasonOf(await srv.client.check(checkRequest({ token: mallory })))).toBe('user_suspended');
  });
});
