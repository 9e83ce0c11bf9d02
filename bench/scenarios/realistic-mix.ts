import { benchConfig } from '../lib/config.js';
import { checkExact, fmt } from '../lib/context.js';
import { decisionDelta } from '../lib/metrics.js';
import { runNodeLoad, writeFrames } from '../lib/node-load.js';
import { benchRequest } from '../lib/requests.js';
import { distinctTokens, forgedToken, mintToken, userClaims } from '../lib/tokens.js';
import type { Scenario } from '../lib/scenario.js';
import type { ScenarioResult } from '../lib/types.js';
import type { WireCheckRequest } from '../../src/wire/check-request.js';
import { grpcFrame } from '../lib/wire.js';

const USERS = 1000;
const SUSPENDED = ['s0', 's1', 's2', 's3', 's4'];
const BLOCKED_IP = '203.0.113.7';

interface Template {
  readonly name: string;
  readonly reason: string;
  readonly req: WireCheckRequest;
}

/** Ten deny shapes, one per reason, each 1 % of the traffic. */
function denyTemplates(): Template[] {
  const t = (name: string, reason: string, req: WireCheckRequest): Template => ({ name, reason, req });
  const now = Math.floor(Date.now() / 1000);
  return [
    t('expired token', 'token_expired', benchRequest({ token: mintToken('RS256', userClaims('u1'), { nowS: now - 7200, ttlS: 600 }) })),
    t('forged signature', 'token_invalid', benchRequest({ token: forgedToken(userClaims('u2')) })),
    t('wrong audience', 'audience_mismatch', benchRequest({ token: mintToken('RS256', userClaims('u3'), { aud: 'someone-else' }) })),
    t('no token', 'token_missing', benchRequest({})),
    t('suspended user', 'user_suspended', benchRequest({ token: mintToken('RS256', userClaims('s1')) })),
    t('blocked source IP', 'ip_blocked', benchRequest({ token: mintToken('RS256', userClaims('u4')), sourceIp: BLOCKED_IP })),
    t('resource not granted', 'resource_not_allowed', benchRequest({ token: mintToken('RS256', userClaims('u5')), path: '/admin/users' })),
    t('clearance too low', 'clearance_insufficient', benchRequest({ token: mintToken('RS256', userClaims('u6', { clearance_level: 'public' })) })),
    t('no route', 'route_not_found', benchRequest({ token: mintToken('RS256', userClaims('u7')), path: '/nowhere' })),
    t('risk above deny tier', 'admin_approval_required', benchRequest({ token: mintToken('RS256', userClaims('u8', { risk_score: 0.9 })) })),
  ];
}

/** Deterministic shuffle so every run sends the same sequence. */
function shuffle<T>(items: T[], seed = 42): T[] {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export const realisticMix: Scenario = {
  name: 'realistic-mix',
  title: 'Realistic mix: 90 % allow, 10 % deny across ten reasons, 1,000 users',
  description:
    '1,000 users with their own (cached) tokens on /api/orders, /api/profile and /public; 10 % denies spread over ten reasons (expired, forged, wrong audience, missing token, suspended, blocked IP, resource not granted, clearance, no route, risk). Pure-Node generator, same sequence against the baseline. Decisions are counted exactly per reason.',
  async run(ctx) {
    const o = ctx.opts;
    ctx.log(`  signing ${USERS} user tokens`);
    const userTokens = distinctTokens('RS256', USERS, { users: USERS });
    const paths = ['/api/orders', '/api/profile', '/public/docs'];
    const allows: Template[] = userTokens.map((token, i) => ({ name: `user ${i}`, reason: 'allowed', req: benchRequest({ token, path: paths[i % 3]!, sourceIp: `10.1.${(i >> 8) & 255}.${i & 255}` }) }));
    const denies = denyTemplates();
    // A cycle of 10,000: every user 9 times (9,000 allows), every deny shape 100 times.
    const cycle: Template[] = [];
    for (let k = 0; k < 9; k++) cycle.push(...allows);
    for (let k = 0; k < 100; k++) cycle.push(...denies);
    shuffle(cycle);
    const framesFile = writeFrames(o.workDir, 'mix', cycle.map((t) => grpcFrame(t.req)));
    const warmup = Math.min(5000, Math.floor(o.mixRequests / 5));
    const load = { connections: o.nodeConnections, concurrency: o.nodeConcurrency, requests: o.mixRequests, warmup, cpus: ctx.cpus.load, workDir: o.workDir };

    const baseline = await ctx.startBaseline();
    const b = await runNodeLoad(baseline.grpc, framesFile, { ...load, name: 'mix-baseline', progress: ctx.progress('mix baseline') });
    await baseline.stop();
    const server = await ctx.startServer('zt-authz mix', benchConfig({ decisionLog: o.decisionLog }), { suspend: SUSPENDED, block: [BLOCKED_IP] });
    await ctx.expectReasons(server, [allows[0]!, allows[1]!, allows[2]!, ...denies]);
    const before = await server.scrape();
    const s = await runNodeLoad(server.grpc, framesFile, { ...load, name: 'mix', progress: ctx.progress('mix server') });
    const after = await server.scrape();
    await server.stop();
    if (s.result.rpcErrors > 0) throw new Error(`${s.result.rpcErrors} RPC errors (${s.result.firstError})`);
    const expected = new Map<string, number>();
    s.perFrame.forEach((n, i) => {
      if (n > 0) expected.set(cycle[i]!.reason, (expected.get(cycle[i]!.reason) ?? 0) + n);
    });
    const decisions = checkExact(expected, decisionDelta(before, after));
    const allowShare = (expected.get('allowed') ?? 0) / s.result.sent;
    ctx.log(`  mix: ${fmt(s.result.reqPerSec)} req/s, baseline ${fmt(b.result.reqPerSec)} (node generator); ${(allowShare * 100).toFixed(1)} % allowed`);
    const result: ScenarioResult = {
      name: this.name,
      title: this.title,
      description: this.description,
      throughput: { server: s.result.reqPerSec, baseline: b.result.reqPerSec, ratio: s.result.reqPerSec / b.result.reqPerSec, rounds: [{ server: s.result.reqPerSec, baseline: b.result.reqPerSec }], generator: 'node' },
      others: [],
      decisions: [decisions],
      figures: [{ label: 'share allowed', value: allowShare, unit: '' }],
      targets: [],
      commands: [s.command],
      notes: ['auto-remediation is off here: the forged and expired tokens would otherwise get their source IP blocked within five requests'],
    };
    return result;
  },
};
