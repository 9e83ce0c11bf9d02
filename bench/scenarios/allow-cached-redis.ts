import { startRedis } from '../../test/helpers/redis.js';
import { benchConfig } from '../lib/config.js';
import { checkOnly, median } from '../lib/context.js';
import { pairedRatio, ratioRange } from '../lib/stats.js';
import { writeBody } from '../lib/h2load.js';
import { benchRequest } from '../lib/requests.js';
import { mintToken, userClaims } from '../lib/tokens.js';
import type { Scenario } from '../lib/scenario.js';
import { grpcFrame } from '../lib/wire.js';

export const allowCachedRedis: Scenario = {
  name: 'allow-cached-redis',
  title: 'Allow, cached token, full policy, Redis-backed store',
  description:
    'As allow-cached-memory, with state in a private redis-server: the hot path reads the in-process mirror and must make no Redis round trip. The in-memory store runs in the same rounds for the Redis-vs-memory comparison. Then, as a second view, the baseline and the Redis-store server run at the same time on the one server core, each with its own h2load.',
  async run(ctx) {
    const redis = await startRedis();
    ctx.onCleanup(() => redis.stop());
    const token = mintToken('RS256', userClaims('alice'));
    const req = benchRequest({ token });
    const body = writeBody(ctx.opts.workDir, 'allow-cached-redis', grpcFrame(req));
    const baseline = await ctx.startBaseline();
    const redisServer = await ctx.startServer('zt-authz (redis)', benchConfig({ decisionLog: ctx.opts.decisionLog, redisUrl: redis.url }));
    const memServer = await ctx.startServer('zt-authz (memory)', benchConfig({ decisionLog: ctx.opts.decisionLog }));
    // Enforcement is live: a suspended user is denied through the mirror, so the Redis path is really in use.
    await redis.cli('SET', 'suspended_user:mallory', 'true', 'EX', '600');
    const mallory = benchRequest({ token: mintToken('RS256', userClaims('mallory')) });
    const until = Date.now() + 5000;
    while ((await redisServer.probe(mallory)) !== 'user_suspended' && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    await ctx.expectReasons(redisServer, [
      { name: 'cached allow', req, reason: 'allowed' },
      { name: 'suspended in Redis', req: mallory, reason: 'user_suspended' },
    ]);
    await ctx.expectReasons(memServer, [{ name: 'cached allow', req, reason: 'allowed' }]);
    const run = await ctx.interleavedH2load(baseline, [redisServer, memServer], body);
    const together = await ctx.simultaneousH2load(baseline, redisServer, body);
    const togetherRatio = pairedRatio(together.baseline, together.server);
    const split = median(together.serverCpuShare);
    const b = median(run.baseline);
    const r = median(run.servers[0]!);
    const m = median(run.servers[1]!);
    const redisRatio = pairedRatio(run.baseline, run.servers[0]!);
    const memRatio = pairedRatio(run.baseline, run.servers[1]!);
    const redisVsMem = pairedRatio(run.servers[1]!, run.servers[0]!);
    return {
      name: this.name,
      title: this.title,
      description: this.description,
      throughput: { server: r, baseline: b, ratio: redisRatio, rounds: run.baseline.map((bb, i) => ({ baseline: bb, server: run.servers[0]![i]! })), generator: 'h2load' },
      others: [
        { label: 'in-memory store, same rounds', reqPerSec: m, ratio: memRatio },
        { label: 'Redis store and baseline at the same time on one core', reqPerSec: median(together.server), ratio: togetherRatio },
      ],
      decisions: [
        checkOnly('allowed', run.decisions[0]!, run.measured[0]!),
        checkOnly('allowed', run.decisions[1]!, run.measured[1]!),
        checkOnly('allowed', together.decisions, together.measured),
      ],
      figures: [
        { label: 'Redis store / in-memory store', value: redisVsMem, unit: 'x' },
        { label: 'simultaneous rounds: server share of the core CPU time', value: split, unit: '' },
        { label: 'simultaneous rounds: calls per CPU-second, Redis store / baseline', value: median(together.perCpuSecond), unit: 'x' },
      ],
      targets: [
        { name: 'Redis store vs no-op baseline', value: redisRatio, target: '>= 0.90x', met: redisRatio >= 0.9 },
        { name: 'Redis store vs in-memory store', value: redisVsMem, target: '>= 0.95x', met: redisVsMem >= 0.95 },
      ],
      commands: [...run.commands, ...together.commands],
      notes: [
        `ratios: medians of per-round ratios (sequential: Redis store ${ratioRange(run.baseline, run.servers[0]!)}, in-memory store ${ratioRange(run.baseline, run.servers[1]!)}; simultaneous: ${ratioRange(together.baseline, together.server)})`,
        `simultaneous rounds (a figure, not the target): the baseline and the Redis-store server share CPU ${ctx.cpus.server ?? '(unpinned)'} at the same time, each with its own h2load; server share of their CPU time ${Math.min(...together.serverCpuShare).toFixed(2)}-${Math.max(...together.serverCpuShare).toFixed(2)}`,
      ],
    };
  },
};
