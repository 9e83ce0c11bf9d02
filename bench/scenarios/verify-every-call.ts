import { benchConfig } from '../lib/config.js';
import { checkOnly, median } from '../lib/context.js';
import { pairedRatio, ratioRange } from '../lib/stats.js';
import { writeBody } from '../lib/h2load.js';
import { benchRequest } from '../lib/requests.js';
import { mintToken, userClaims } from '../lib/tokens.js';
import type { Scenario } from '../lib/scenario.js';
import type { ScenarioResult } from '../lib/types.js';
import { grpcFrame } from '../lib/wire.js';

export const verifyEveryCall: Scenario = {
  name: 'verify-every-call',
  title: 'Every call verifies RS256 (token cache off), full policy, in-memory store',
  description:
    'The allow-cached-memory request with the token cache off (token_cache.max_age_s 0), so each check parses the token, verifies its RS256 signature and checks its claims before the policy runs. h2load, same body on every stream, interleaved with the no-op baseline.',
  async run(ctx) {
    const token = mintToken('RS256', userClaims('alice'));
    const req = benchRequest({ token });
    const body = writeBody(ctx.opts.workDir, 'verify-every-call', grpcFrame(req));
    const cfg = benchConfig({ decisionLog: ctx.opts.decisionLog }) as Record<string, any>;
    cfg.identity = { ...cfg.identity, token_cache: { max_age_s: 0 } };
    const baseline = await ctx.startBaseline();
    const server = await ctx.startServer('zt-authz (verify every call)', cfg as never);
    await ctx.expectReasons(server, [{ name: 'verified allow', req, reason: 'allowed' }]);
    const run = await ctx.interleavedH2load(baseline, [server], body);
    await server.stop();
    await baseline.stop();
    const ratio = pairedRatio(run.baseline, run.servers[0]!);
    const result: ScenarioResult = {
      name: this.name,
      title: this.title,
      description: this.description,
      throughput: { server: median(run.servers[0]!), baseline: median(run.baseline), ratio, rounds: run.baseline.map((bb, i) => ({ baseline: bb, server: run.servers[0]![i]! })), generator: 'h2load' },
      others: [],
      decisions: [checkOnly('allowed', run.decisions[0]!, run.measured[0]!)],
      figures: [],
      targets: [{ name: 'every call verifying: zt-authz vs no-op baseline', value: ratio, target: '>= 0.78x', met: ratio >= 0.78 }],
      commands: run.commands,
      notes: [`ratio: median of per-round ratios (${ratioRange(run.baseline, run.servers[0]!)})`],
    };
    return result;
  },
};
