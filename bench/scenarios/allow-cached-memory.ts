import { benchConfig } from '../lib/config.js';
import { checkOnly, median } from '../lib/context.js';
import { pairedRatio, ratioRange } from '../lib/stats.js';
import { writeBody } from '../lib/h2load.js';
import { benchRequest } from '../lib/requests.js';
import { mintToken, userClaims } from '../lib/tokens.js';
import type { Scenario } from '../lib/scenario.js';
import type { ScenarioResult } from '../lib/types.js';
import { grpcFrame } from '../lib/wire.js';

export const allowCachedMemory: Scenario = {
  name: 'allow-cached-memory',
  title: 'Allow, cached token, full policy, in-memory store',
  description:
    'One user token on every request (verified once, then served from the token cache), GET /api/orders through the whole demo policy: IP block list, route, identity, suspension, risk tiers, time window, allow list, clearance. h2load, same body on every stream.',
  async run(ctx) {
    const token = mintToken('RS256', userClaims('alice'));
    const req = benchRequest({ token });
    const body = writeBody(ctx.opts.workDir, 'allow-cached', grpcFrame(req));
    const baseline = await ctx.startBaseline();
    const server = await ctx.startServer('zt-authz (memory)', benchConfig({ decisionLog: ctx.opts.decisionLog }));
    await ctx.expectReasons(server, [{ name: 'cached allow', req, reason: 'allowed' }]);
    const run = await ctx.interleavedH2load(baseline, [server], body);
    await server.stop();
    await baseline.stop();
    const b = median(run.baseline);
    const s = median(run.servers[0]!);
    ctx.shared.maxAllowRps = s;
    const result: ScenarioResult = {
      name: this.name,
      title: this.title,
      description: this.description,
      throughput: { server: s, baseline: b, ratio: pairedRatio(run.baseline, run.servers[0]!), rounds: run.baseline.map((bb, i) => ({ baseline: bb, server: run.servers[0]![i]! })), generator: 'h2load' },
      others: [],
      decisions: [checkOnly('allowed', run.decisions[0]!, run.measured[0]!)],
      figures: [],
      targets: [],
      commands: run.commands,
      notes: [`ratio: median of per-round ratios (${ratioRange(run.baseline, run.servers[0]!)})`],
    };
    return result;
  },
};
