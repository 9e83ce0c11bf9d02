import { benchConfig } from '../lib/config.js';
import { BenchContext, checkOnly, median } from '../lib/context.js';
import { writeBody } from '../lib/h2load.js';
import { benchRequest } from '../lib/requests.js';
import { pairedRatio, ratioRange } from '../lib/stats.js';
import { mintToken, userClaims } from '../lib/tokens.js';
import type { Scenario } from '../lib/scenario.js';
import { grpcFrame } from '../lib/wire.js';

/**
 * `serve --workers`: how far a second worker carries on this machine. Nothing is pinned (the
 * workers need both cores, and share them with h2load), and the token cache is off so that every
 * call verifies a signature: with cheap cached calls h2load itself would need the second core.
 */
export const workersScaling: Scenario = {
  name: 'workers-scaling',
  title: 'Multi-core: 1 vs 2 workers, every call verifies an RS256 signature (unpinned)',
  description:
    'The server as a node:cluster of 2 workers against 1 worker, same h2load load (4 connections, so both workers get some), nothing pinned. identity.token_cache.max_age_s is 0, so every check verifies a signature (counted: token-cache misses = checks). The no-op baseline runs in the same rounds, unpinned too.',
  async run(ctx) {
    const free = new BenchContext({ ...ctx.opts, pin: false, clients: Math.max(4, ctx.opts.clients) });
    ctx.onCleanup(() => free.cleanup());
    const token = mintToken('RS256', userClaims('alice'));
    const req = benchRequest({ token });
    const body = writeBody(ctx.opts.workDir, 'workers-scaling', grpcFrame(req));
    const config = benchConfig({ decisionLog: ctx.opts.decisionLog });
    config.identity = { ...config.identity, token_cache: { max_age_s: 0 } };
    const baseline = await free.startBaseline();
    const two = await free.startServer('zt-authz, 2 workers', config, undefined, 2);
    const one = await free.startServer('zt-authz, 1 worker', config, undefined, 1);
    await ctx.expectReasons(two, [{ name: 'verified allow', req, reason: 'allowed' }]);
    await ctx.expectReasons(one, [{ name: 'verified allow', req, reason: 'allowed' }]);
    const missesBefore = await Promise.all([two, one].map((s) => tokenMisses(s.http)));
    const run = await free.interleavedH2load(baseline, [two, one], body);
    const missesAfter = await Promise.all([two, one].map((s) => tokenMisses(s.http)));
    const scaling = pairedRatio(run.servers[1]!, run.servers[0]!);
    const b = median(run.baseline);
    const s2 = median(run.servers[0]!);
    const s1 = median(run.servers[1]!);
    const decisions = [checkOnly('allowed', run.decisions[0]!, run.measured[0]!), checkOnly('allowed', run.decisions[1]!, run.measured[1]!)];
    // Every counted decision must have verified a signature: the cache never answered.
    [0, 1].forEach((i) => {
      const checks = [...run.decisions[i]!.values()].reduce((a, v) => a + v, 0);
      const misses = missesAfter[i]! - missesBefore[i]!;
      if (misses < checks) decisions[i] = { ...decisions[i]!, ok: false, problems: [...decisions[i]!.problems, `${checks} checks but only ${misses} signature verifications`] };
    });
    return {
      name: this.name,
      title: this.title,
      description: this.description,
      throughput: { server: s2, baseline: b, ratio: pairedRatio(run.baseline, run.servers[0]!), rounds: run.baseline.map((bb, i) => ({ baseline: bb, server: run.servers[0]![i]! })), generator: 'h2load' },
      others: [{ label: '1 worker, same rounds', reqPerSec: s1, ratio: pairedRatio(run.baseline, run.servers[1]!) }],
      decisions,
      figures: [
        { label: '2 workers / 1 worker', value: scaling, unit: 'x' },
        { label: '2 workers req/s', value: Math.round(s2), unit: 'req/s' },
        { label: '1 worker req/s', value: Math.round(s1), unit: 'req/s' },
      ],
      targets: [],
      commands: run.commands,
      notes: [`2 workers / 1 worker per round: ${ratioRange(run.servers[1]!, run.servers[0]!)}; h2load shares the two cores with the workers, so this is the scaling this machine allows, not a per-core figure`],
    };
  },
};

async function tokenMisses(http: string): Promise<number> {
  const text = await (await fetch(`http://${http}/metrics`)).text();
  const m = /^zt_authz_token_cache_total\{result="miss"\} (\S+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}
