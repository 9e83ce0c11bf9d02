import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema/index.js';
import type { WireCheckResponse } from '../../src/response/envoy.js';
import { loadProtos } from '../../src/wire/protos.js';
import { checkRequest } from '../helpers/grpc.js';
import { startJwksServer, type JwksServer, type JwksFault } from '../helpers/jwks-server.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/server.js';
import { b64url, jwksOf, makeKey, tokenFactory, type TestKey } from '../helpers/tokens.js';
import { floodFromWorker } from './flood.js';
import { grpcFrame, isAllow, isDecision, loadLoop, percentile, reasonOf, type LoadSample } from './support.js';

/**
 * JWKS endpoint faults with load running: a real JWKS server over HTTP, the real sidecar over
 * gRPC, a loop of checks with known-kid tokens the whole time. What must hold: known-kid checks
 * keep getting correct answers before their deadline, unknown kids cost at most one fetch per
 * cooldown, and nothing signed by a key outside the set is ever allowed.
 */
const AUD = 'orders-api';
const CLAIMS = { allowed_resources: ['orders'] };
/** Known-kid checks are prompt when no slower than this, or than 10× this machine's own p99 just before the fault. */
const DEADLINE_MS = 1000;
/** The RPC deadline of every call: one without a decision by then hung. */
const HANG_GUARD_MS = 10_000;
const k1 = makeKey('RS256', 'k1');
const k2 = makeKey('ES256', 'k2');
const attacker = makeKey('RS256', 'attacker');

function config(jwks: JwksServer, keys: Record<string, unknown>): ConfigInput {
  return {
    identity: {
      issuers: [{ issuer: jwks.issuer, audiences: [AUD], algorithms: ['RS256', 'ES256'], keys: { jwks_uri: jwks.jwksUri, refresh_interval_s: 3600, fetch_timeout_ms: 300, unknown_kid_wait_ms: 100, ...keys } }],
    },
    policy: { resources: { orders: { sensitivity: 'low', classification: 'public' } }, routes: [{ prefix: '/', resource: 'orders' }] },
    // Unknown-kid floods are auth failures; blocking the flooding IP would hide the kid path under test.
    state: { remediation: { enabled: false } },
  };
}

let jwks: JwksServer | undefined;
let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.stop();
  await jwks?.close();
  srv = jwks = undefined;
});

async function setup(keys: Record<string, unknown>, initial: TestKey[] = [k1]) {
  jwks = await startJwksServer({ jwks: jwksOf(...initial) });
  srv = await startTestServer(config(jwks, keys));
  const tf = tokenFactory(jwks.issuer, AUD);
  // Many distinct tokens, so the loop exercises verification and not only the token cache.
  const known = Array.from({ length: 200 }, (_, i) => tf.mint({ key: k1, claims: { ...CLAIMS, jti: `k${i}` } }));
  let n = 0;
  const knownReq = () => ({ label: 'known', req: checkRequest({ token: known[n++ % known.length]! }) });
  return { jwks, srv, tf, knownReq };
}

/**
 * Known-kid checks: every one a decision, none slower than `boundMs`, every one allowed (or the
 * deny wanted). The bound comes from the same run (see promptBound): a fixed one fails on a
 * machine whose other processes keep both cores busy, whatever the sidecar does.
 */
function expectPrompt(samples: LoadSample[], boundMs: number): void {
  expect(samples.length).toBeGreaterThan(20);
  const late = samples.filter((s) => !isDecision(s.result));
  expect(late.map((s) => s.result), 'known-kid checks without a decision').toEqual([]);
  expect(samples.filter((s) => s.ms > boundMs).map((s) => Math.round(s.ms)), `known-kid checks slower than ${Math.round(boundMs)} ms`).toEqual([]);
}

/** DEADLINE_MS, or 10× the p99 of known-kid checks before the fault when the machine is slower than that. */
function promptBound(before: LoadSample[]): number {
  return Math.max(DEADLINE_MS, 10 * percentile(before.map((s) => s.ms), 99));
}

/** Waits until `n` samples that started after `sinceMs` have completed (an event, not a sleep). */
function samplesSince(samples: LoadSample[], sinceMs: number, n: number, what: string): Promise<void> {
  return waitFor(() => samples.filter((s) => s.startedMs >= sinceMs).length >= n, 20_000, what);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

describe('JWKS endpoint faults under load', () => {
  const faults: JwksFault[] = ['status500', 'hang', 'malformed'];
  it.each(faults)('%s: known kids keep being allowed promptly, unknown kids cost one fetch per cooldown, forged keys never pass', async (fault) => {
    const COOLDOWN_S = 0.5;
    const { jwks, srv, tf, knownReq } = await setup({ unknown_kid_cooldown_s: COOLDOWN_S });
    const load = loadLoop(srv.client, knownReq, { deadlineMs: HANG_GUARD_MS });
    await samplesSince(load.samples, 0, 20, 'known-kid checks before the fault');
    const bound = promptBound([...load.samples]);

    jwks.setFault(fault);
    jwks.resetCounts();
    const faultStart = performance.now();
    // Attacks during the outage: new kids (a refetch would be the only way to learn them), the
    // attacker's key under the known kid, and a kid-less token. Paced, for 1.6 s.
    const attacks: Promise<{ reason: string | undefined; allowed: boolean }>[] = [];
    let i = 0;
    while (performance.now() - faultStart < 1600) {
      const token =
        i % 3 === 0
          ? tf.mint({ key: attacker, header: { kid: `rotated-${i}` }, claims: CLAIMS })
          : i % 3 === 1
            ? tf.mint({ key: attacker, header: { kid: k1.kid }, claims: CLAIMS })
            : tf.mint({ key: attacker, header: { kid: undefined }, claims: CLAIMS });
      attacks.push(srv.client.check(checkRequest({ token }), { deadlineMs: HANG_GUARD_MS }).then((r) => ({ reason: reasonOf(r), allowed: isAllow(r) })));
      i++;
      await new Promise((r) => setTimeout(r, 10));
    }
    const outcomes = await Promise.all(attacks);
    const elapsedS = (performance.now() - faultStart) / 1000;
    const fetches = jwks.count('/jwks.json');
    // Enough known-kid checks made during the fault to judge them, however slow the machine is.
    await samplesSince(load.samples, faultStart, 21, 'known-kid checks during the fault');
    const samples = await load.stop();

    expect(outcomes.filter((o) => o.allowed)).toEqual([]);
    expect(outcomes.every((o) => o.reason === 'token_invalid' || o.reason === 'deadline_exceeded')).toBe(true);
    expect(fetches).toBeGreaterThanOrEqual(1);
    expect(fetches).toBeLessThanOrEqual(Math.ceil(elapsedS / COOLDOWN_S) + 1);
    expectPrompt(samples, bound);
    // The last good keys keep serving: every known-kid token is still allowed.
    expect(samples.filter((s) => !isAllow(s.result)).map((s) => reasonOf(s.result))).toEqual([]);
    expect(srv.app.ready()).toBe(true);
  });

  it('a key set that drops the current key: tokens of the dropped key are denied from the moment the new set is in force', async () => {
    const { jwks, srv, tf, knownReq } = await setup({ unknown_kid_cooldown_s: 0.2 });
    const load = loadLoop(srv.client, knownReq, { deadlineMs: HANG_GUARD_MS });
    await samplesSince(load.samples, 0, 20, 'known-kid checks completed before the rotation');
    const bound = promptBound([...load.samples]);

    // Rotation with k1 compromised: the IdP now publishes only k2.
    const rotatedAt = performance.now();
    jwks.setJwks(jwksOf(k2));
    const rotated = tf.mint({ key: k2, claims: CLAIMS });
    let inForceAt = 0;
    await waitFor(
      async () => {
        const r = await srv.client.check(checkRequest({ token: rotated }), { deadlineMs: HANG_GUARD_MS });
        if (isAllow(r)) inForceAt = performance.now();
        return inForceAt > 0;
      },
      5000,
      'the k2 token to be accepted after the unknown-kid refetch',
    );
    await samplesSince(load.samples, inForceAt + 1, 21, 'known-kid checks started after the new set is in force');
    const samples = await load.stop();

    expectPrompt(samples, bound);
    const before = samples.filter((s) => s.startedMs + s.ms < rotatedAt);
    const after = samples.filter((s) => s.startedMs > inForceAt);
    expect(before.length).toBeGreaterThan(0);
    expect(before.every((s) => isAllow(s.result))).toBe(true);
    // Zero allows for the dropped key once the new set is in force, cached verifications included.
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((s) => isAllow(s.result))).toEqual([]);
    expect(new Set(after.map((s) => reasonOf(s.result)))).toEqual(new Set(['token_invalid']));
  });

  it('a flood of unknown kids (target 10,000/s for 2 s): at most one fetch per cooldown, known kids unaffected, zero allows', async () => {
    // The one fetch may time out while the flood keeps the event loop busy; its retry then keeps to
    // the 30 s cooldown like any other fetch of a failing endpoint, so it is still one fetch.
    const { jwks, srv, tf, knownReq } = await setup({ unknown_kid_cooldown_s: 30 });
    // Warm-up: the known-kid loop alone, for a baseline.
    const baseline = loadLoop(srv.client, knownReq, { deadlineMs: HANG_GUARD_MS });
    await samplesSince(baseline.samples, 0, 50, 'baseline known-kid checks');
    const quiet = await baseline.stop();

    // 20,000 distinct kids. The kid is looked up before the signature is checked, so one real
    // signature (of another token) does for all; each token is otherwise well formed.
    const sig = tf.mint({ key: attacker, claims: CLAIMS }).split('.')[2]!;
    const payload = b64url(tf.claims(CLAIMS));
    const ser = loadProtos().authorization.Check!.requestSerialize;
    const frames = Array.from({ length: 20_000 }, (_, i) => {
      const header = b64url({ alg: 'RS256', typ: 'JWT', kid: randomBytes(12).toString('base64url') });
      return grpcFrame(ser(checkRequest({ token: `${header}.${payload}.${sig}`, sourceIp: `10.9.${(i >> 8) & 255}.${i & 255}` })));
    });

    jwks.resetCounts();
    // The flood keeps up to MAX_IN_FLIGHT calls queued ahead of each known-kid call, so on a busy
    // machine a known-kid call waits for that queue to drain however the kid path behaves. The call
    // deadline is only a hang guard; the bound checked below is the drain time measured in this run.
    const MAX_IN_FLIGHT = 500;
    const load = loadLoop(srv.client, knownReq, { deadlineMs: HANG_GUARD_MS });
    const flood = await floodFromWorker({ address: srv.grpcAddress, frames, ratePerS: 10_000, durationMs: 2000, maxInFlight: MAX_IN_FLIGHT });
    await samplesSince(load.samples, 0, 21, 'known-kid checks alongside the flood');
    const samples = await load.stop();
    const fetches = jwks.count('/jwks.json');

    const decode = loadProtos().authorization.Check!.responseDeserialize;
    const floodAllowed = flood.responses.filter((b) => (decode(b) as WireCheckResponse).status?.code === 0);
    const p99 = (xs: LoadSample[]) => percentile(xs.map((s) => s.ms), 99).toFixed(1);
    console.log(
      `[jwks flood] ${flood.sent} unknown-kid checks in ${flood.elapsedMs} ms (${Math.round((flood.sent * 1000) / flood.elapsedMs)}/s), ` +
        `${flood.responses.length} answered with a decision, ${fetches} JWKS fetch(es); known-kid p99 ${p99(quiet)} ms quiet, ${p99(samples)} ms during the flood ` +
        `(mean ${mean(quiet.map((s) => s.ms)).toFixed(2)} / ${mean(samples.map((s) => s.ms)).toFixed(2)} ms, ${samples.length} checks)`,
    );

    expect(fetches).toBeLessThanOrEqual(1);
    expect(floodAllowed.length).toBe(0);
    // Known kids never wait on the kid path: no longer than twice the flood's queue drain time.
    const drainMs = (MAX_IN_FLIGHT * flood.elapsedMs) / Math.max(1, flood.statuses.length);
    const bound = Math.max(promptBound(quiet), 2 * drainMs);
    // Every flood call was answered (a deny), none failed at the RPC level.
    expect(flood.statuses.filter((s) => s !== 0)).toEqual([]);
    expectPrompt(samples, bound);
    expect(samples.filter((s) => !isAllow(s.result)).map((s) => reasonOf(s.result))).toEqual([]);
    // Building 20,000 frames and the waits above take long on a machine kept busy by other processes.
  }, 120_000);
});
