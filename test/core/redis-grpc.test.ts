import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema/index.js';
import { DEMO_CONFIG } from '../../src/config/defaults.js';
import { signDevToken } from '../../src/identity/dev-token.js';
import { checkRequest } from '../helpers/grpc.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/server.js';

/**
 * Redis faults with the real sidecar under gRPC load: suspended users and blocked IPs never get
 * an OK, a fail_closed list denies once the mirror is out of sync, nothing hangs, and the sidecar
 * recovers and resyncs by itself.
 */
const CLAIMS = { allowed_resources: ['orders'], clearance_level: 'internal' };
const BLOCKED_IP = '10.66.0.1';

function config(url: string): ConfigInput {
  return {
    ...DEMO_CONFIG,
    state: {
      backend: 'redis',
      redis: { url, command_timeout_ms: 100, connect_timeout_ms: 200, heartbeat_interval_ms: 100, resync_interval_s: 30 },
      // Users keep the last known state (fail_static); IPs deny as soon as the mirror is out of sync.
      on_unavailable: { suspended_users: 'fail_static', blocked_ips: 'fail_closed', user_risk: 'fail_static' },
      max_staleness_s: 30,
      remediation: { enabled: false },
    },
  };
}

let redis: RedisProcess;
let srv: TestServer;
let alice: string;
let mallory: string;

beforeAll(async () => {
  redis = await startRedis();
  srv = await startTestServer(config(redis.url));
  alice = await signDevToken({ sub: 'alice', ttlS: 600, claims: CLAIMS });
  mallory = await signDevToken({ sub: 'mallory', ttlS: 600, claims: CLAIMS });
});
afterAll(async () => {
  await srv?.stop();
  await redis?.stop();
});

type Kind = 'suspended' | 'blocked' | 'clean';
interface Sample {
  kind: Kind;
  at: number;
  rpcCode: number;
  reason: string;
}

/**
 * Every call carries a deadline: a hang would end as DEADLINE_EXCEEDED. Generous, so a busy
 * machine answering slowly is not mistaken for one.
 */
async function reasonFor(kind: Kind, deadlineMs = 5000): Promise<{ rpcCode: number; reason: string }> {
  const spec = kind === 'suspended' ? { token: mallory } : kind === 'blocked' ? { token: alice, sourceIp: BLOCKED_IP } : { token: alice };
  const r = await srv.client.check(checkRequest(spec), { deadlineMs });
  return { rpcCode: r.rpcCode, reason: r.response ? r.response.status.message || 'allowed' : `rpc:${r.rpcCode}` };
}

/** Runs 6 concurrent request loops over the three kinds until `stop()`; every call has a deadline. */
function load() {
  const samples: Sample[] = [];
  let running = true;
  const kinds: Kind[] = ['suspended', 'blocked', 'clean'];
  const done = Promise.all(
    Array.from({ length: 6 }, async (_, i) => {
      while (running) {
        const kind = kinds[i % 3]!;
        const r = await reasonFor(kind);
        samples.push({ kind, at: Date.now(), ...r });
      }
    }),
  );
  return {
    samples,
    /** Resolves once `n` more answers of every kind have arrived (the load is progressing, however slowly). */
    async more(n: number, timeoutMs = 30_000): Promise<void> {
      const from = samples.length;
      const enough = () => kinds.every((k) => samples.slice(from).filter((x) => x.kind === k).length >= n);
      await waitFor(enough, timeoutMs, `${n} more answers of every kind`);
    },
    async stop() {
      running = false;
      await done;
    },
  };
}

async function listBoth(): Promise<void> {
  await redis.cli('SET', 'suspended_user:mallory', 'true', 'EX', '600');
  await redis.cli('SET', `blocked_ip:${BLOCKED_IP}`, 'true', 'EX', '600');
  await waitFor(async () => (await reasonFor('suspended')).reason === 'user_suspended' && (await reasonFor('blocked')).reason === 'ip_blocked', 15_000, 'writes enforced');
}

function assertNeverAllowed(samples: Sample[]) {
  // The phases wait for answers (load.more), so there are always this many.
  expect(samples.length).toBeGreaterThan(50);
  for (const s of samples) {
    // No hang: every call was answered inside its deadline with a CheckResponse.
    expect(s.rpcCode, `${s.kind} at ${s.at}`).toBe(0);
    if (s.kind !== 'clean') expect(s.reason, `${s.kind} at ${s.at}`).not.toBe('allowed');
  }
}

describe('Redis faults under gRPC load', () => {
  it('SIGKILL: no OK for listed entries, fail_closed denies, and a restart resyncs writes made meanwhile', async () => {
    await listBoth();
    expect((await reasonFor('clean')).reason).toBe('allowed');
    const l = load();
    await l.more(10);
    const killedAt = Date.now();
    await redis.kill('SIGKILL');
    // fail_closed (IP list) turns every lookup into dependency_unavailable once the loss is noticed.
    await waitFor(async () => (await reasonFor('clean')).reason === 'dependency_unavailable', 15_000, 'fail_closed after the loss');
    // Keep the load going while closed, to see that it stays closed.
    await l.more(10);
    await l.stop();
    assertNeverAllowed(l.samples);
    // Once the fail_closed list failed it stays closed until Redis is back (no flapping to allow).
    const clean = l.samples.filter((s) => s.kind === 'clean' && s.at > killedAt);
    const firstClosed = clean.findIndex((s) => s.reason === 'dependency_unavailable');
    expect(firstClosed).toBeGreaterThanOrEqual(0);
    for (const s of clean.slice(firstClosed)) expect(s.reason).toBe('dependency_unavailable');
    expect(srv.app.readiness().components.state).toMatchObject({ connected: false });

    // Back, empty (no persistence): a write made as it comes back is picked up by the resync.
    await redis.restart();
    await redis.cli('SET', 'suspended_user:bob', 'true', 'EX', '600');
    const bob = await signDevToken({ sub: 'bob', ttlS: 600, claims: CLAIMS });
    await waitFor(async () => (await reasonFor('clean')).reason === 'allowed', 30_000, 'recovery');
    const r = await srv.client.check(checkRequest({ token: bob }));
    expect(r.response!.status.message).toBe('user_suspended');
  }, 120_000);

  it('SIGSTOP (a stalled Redis): same guarantees, then recovery with the state intact', async () => {
    await listBoth();
    const l = load();
    await l.more(10);
    redis.pause();
    try {
      await waitFor(async () => (await reasonFor('clean')).reason === 'dependency_unavailable', 15_000, 'stall noticed');
      await l.more(10);
    } finally {
      redis.resume();
    }
    await waitFor(async () => (await reasonFor('clean')).reason === 'allowed', 30_000, 'recovery after SIGCONT');
    await l.stop();
    assertNeverAllowed(l.samples);
    expect((await reasonFor('suspended')).reason).toBe('user_suspended');
    await redis.cli('DEL', 'suspended_user:mallory');
    await waitFor(async () => (await reasonFor('suspended')).reason === 'allowed', 15_000, 'unsuspend after recovery');
  }, 120_000);
});
