import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import type { ConfigInput } from '../../src/config/schema/index.js';
import { checkRequest, type RequestSpec } from '../helpers/grpc.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/server.js';
import { jwksOf, makeKey, tokenFactory } from '../helpers/tokens.js';

/**
 * Explicit deny first: while Redis is gone and every list fails closed, what the mirror knows
 * still answers with its own PERMISSION_DENIED (user_suspended, ip_blocked), and a bad token its
 * own 401; only what would have been an allow becomes dependency_unavailable (UNAVAILABLE).
 * Real sidecar, real gRPC, a real redis-server killed or frozen.
 */
const AUD = 'orders-api';
const key = makeKey('RS256', 'k1');
const claims = { allowed_resources: ['orders'] };
const BLOCKED_IP = '10.66.0.1';
const UNLISTED_IP = '10.77.0.1';
/** Overall bound for each awaited event: generous, so a loaded machine only makes the test slower. */
const WAIT_MS = 25_000;

let redis: RedisProcess | undefined;
let jwks: JwksServer | undefined;
let srv: TestServer | undefined;
afterEach(async () => {
  redis?.resume();
  await srv?.stop();
  await redis?.stop();
  await jwks?.close();
  srv = redis = jwks = undefined;
});

async function setup() {
  redis = await startRedis();
  jwks = await startJwksServer({ jwks: jwksOf(key) });
  const cfg: ConfigInput = {
    identity: { issuers: [{ issuer: jwks.issuer, audiences: [AUD], keys: { jwks_uri: jwks.jwksUri } }] },
    policy: { resources: { orders: { sensitivity: 'low', classification: 'public' } }, routes: [{ prefix: '/', resource: 'orders' }] },
    state: {
      backend: 'redis',
      // Timeouts loose enough that a loaded machine does not flap the mirror out of sync before the outage.
      redis: { url: redis.url, command_timeout_ms: 500, connect_timeout_ms: 500, heartbeat_interval_ms: 200 },
      on_unavailable: { suspended_users: 'fail_closed', blocked_ips: 'fail_closed', user_risk: 'fail_closed' },
      remediation: { enabled: false },
    },
  };
  srv = await startTestServer(cfg);
  const tf = tokenFactory(jwks.issuer, AUD);
  const tokens = {
    alice: tf.mint({ key, claims: { ...claims, sub: 'alice' } }),
    mallory: tf.mint({ key, claims: { ...claims, sub: 'mallory' } }),
    forged: tf.mint({ key, claims, signWith: { alg: 'RS256', key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey } }),
  };
  const s = srv;
  const decide = async (spec: RequestSpec) => {
    const r = await s.client.check(checkRequest(spec));
    expect(r.rpcCode).toBe(0);
    return { code: r.response!.status.code ?? 0, reason: r.response!.status.message || 'allowed' };
  };
  await redis.cli('SET', 'suspended_user:mallory', 'true', 'EX', '600');
  await redis.cli('SET', `blocked_ip:${BLOCKED_IP}`, 'true', 'EX', '600');
  // Until the mirror is in sync a fail_closed list cannot clear anybody: wait for all three answers.
  const settled = async () =>
    (await decide({ token: tokens.mallory, sourceIp: UNLISTED_IP })).reason === 'user_suspended' &&
    (await decide({ token: tokens.alice, sourceIp: BLOCKED_IP })).reason === 'ip_blocked' &&
    (await decide({ token: tokens.alice, sourceIp: UNLISTED_IP })).reason === 'allowed';
  await waitFor(settled, WAIT_MS, 'listings enforced and the mirror in sync');
  return { decide, tokens };
}

async function assertExplicitDenies(decide: (s: RequestSpec) => Promise<{ code: number; reason: string }>, tokens: Record<string, string>) {
  // The outage is noticed: an unknown user from an unlisted IP cannot be cleared.
  await waitFor(async () => (await decide({ token: tokens.alice!, sourceIp: UNLISTED_IP })).reason === 'dependency_unavailable', WAIT_MS, 'fail_closed');
  expect(await decide({ token: tokens.alice!, sourceIp: UNLISTED_IP })).toEqual({ code: 14, reason: 'dependency_unavailable' });
  // Known listings answer their own explicit PERMISSION_DENIED.
  expect(await decide({ token: tokens.mallory!, sourceIp: UNLISTED_IP })).toEqual({ code: 7, reason: 'user_suspended' });
  expect(await decide({ token: tokens.alice!, sourceIp: BLOCKED_IP })).toEqual({ code: 7, reason: 'ip_blocked' });
  expect(await decide({ token: tokens.mallory!, sourceIp: BLOCKED_IP })).toEqual({ code: 7, reason: 'ip_blocked' });
  // A bad or missing token is the client's fault whatever Redis does: its own 401.
  expect(await decide({ token: tokens.forged!, sourceIp: UNLISTED_IP })).toEqual({ code: 16, reason: 'token_invalid' });
  expect(await decide({ sourceIp: UNLISTED_IP })).toEqual({ code: 16, reason: 'token_missing' });
}

describe('explicit deny first while Redis is unavailable (fail_closed)', () => {
  it('Redis killed: a suspended user from an unlisted IP gets user_suspended, not UNAVAILABLE', async () => {
    const { decide, tokens } = await setup();
    await redis!.kill('SIGKILL');
    await assertExplicitDenies(decide, tokens);
  }, 90_000);

  it('Redis frozen (SIGSTOP): the same answers', async () => {
    const { decide, tokens } = await setup();
    redis!.pause();
    await assertExplicitDenies(decide, tokens);
  }, 90_000);
});
