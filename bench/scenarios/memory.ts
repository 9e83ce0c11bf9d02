import { benchConfig } from '../lib/config.js';
import { checkExact, fmt } from '../lib/context.js';
import { decisionDelta } from '../lib/metrics.js';
import { runNodeLoad, writeFrames } from '../lib/node-load.js';
import { benchRequest } from '../lib/requests.js';
import { distinctTokens } from '../lib/tokens.js';
import type { Scenario } from '../lib/scenario.js';
import { grpcFrame } from '../lib/wire.js';

const MB = 1024 * 1024;

export const memory: Scenario = {
  name: 'memory',
  title: 'Memory: RSS after many checks over many distinct tokens',
  description:
    'The server checks --memory-checks requests cycling over --memory-tokens distinct ES256 tokens (defaults 1,000,000 over 100,000), so the token cache fills to its bound. RSS of the server process tree from /proc, before and after, next to the idle baseline.',
  async run(ctx) {
    const o = ctx.opts;
    ctx.log(`  signing ${fmt(o.memoryTokens)} ES256 tokens`);
    const tokens = distinctTokens('ES256', o.memoryTokens, { users: 10_000, cacheDir: `${o.outDir}/.tokens`, progress: (n) => ctx.log(`  signed ${fmt(n)}`) });
    const framesFile = writeFrames(o.workDir, 'memory', tokens.map((token) => grpcFrame(benchRequest({ token }))));
    const baseline = await ctx.startBaseline();
    const baselineRss = ctx.rssOf(baseline.pid);
    await baseline.stop();
    const server = await ctx.startServer('zt-authz memory', benchConfig({ decisionLog: o.decisionLog }));
    await ctx.expectReasons(server, [{ name: 'fresh ES256 token', req: benchRequest({ token: tokens[0]! }), reason: 'allowed' }]);
    const rssStart = server.rssBytes();
    const before = await server.scrape();
    const s = await runNodeLoad(server.grpc, framesFile, {
      connections: o.nodeConnections,
      concurrency: o.nodeConcurrency,
      requests: o.memoryChecks,
      warmup: 0,
      cpus: ctx.cpus.load,
      workDir: o.workDir,
      name: 'memory',
      progress: ctx.progress('memory checks'),
    });
    const after = await server.scrape();
    const rssEnd = server.rssBytes();
    if (process.env.ZT_BENCH_HEAP) {
      const heap = await (await fetch(`http://${server.http}/metrics`)).text();
      ctx.log(heap.split('\n').filter((l) => /^nodejs_heap_(size|space_size_used)/.test(l)).join('\n'));
    }
    await server.stop();
    if (s.result.rpcErrors > 0) throw new Error(`${s.result.rpcErrors} RPC errors (${s.result.firstError})`);
    ctx.log(`  RSS ${(rssStart / MB).toFixed(0)} MB -> ${(rssEnd / MB).toFixed(0)} MB after ${fmt(o.memoryChecks)} checks over ${fmt(o.memoryTokens)} tokens`);
    const full = o.memoryChecks >= 1_000_000 && o.memoryTokens >= 100_000;
    return {
      name: this.name,
      title: this.title,
      description: this.description,
      others: [],
      decisions: [checkExact(new Map([['allowed', s.result.sent]]), decisionDelta(before, after))],
      figures: [
        { label: 'checks', value: o.memoryChecks, unit: '' },
        { label: 'distinct tokens', value: o.memoryTokens, unit: '' },
        { label: 'server RSS at start', value: Math.round(rssStart / MB), unit: 'MB' },
        { label: 'server RSS after', value: Math.round(rssEnd / MB), unit: 'MB' },
        { label: 'no-op baseline RSS (idle)', value: Math.round(baselineRss / MB), unit: 'MB' },
        { label: 'RSS after / baseline', value: rssEnd / baselineRss, unit: 'x' },
        { label: 'throughput during the run (node generator)', value: Math.round(s.result.reqPerSec), unit: 'req/s' },
      ],
      targets: full ? [{ name: 'RSS after 1,000,000 checks over 100,000 tokens (MB)', value: rssEnd / MB, target: '<= 200 MB', met: rssEnd <= 200 * MB }] : [],
      commands: [s.command],
      notes: full ? [] : [`reduced size (${fmt(o.memoryChecks)} checks, ${fmt(o.memoryTokens)} tokens): the 200 MB target applies to 1,000,000 over 100,000`],
    };
  },
};
