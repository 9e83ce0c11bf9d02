import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { benchConfig } from '../lib/config.js';
import { checkExact } from '../lib/context.js';
import { decisionDelta } from '../lib/metrics.js';
import { runNodeLoad, writeFrames } from '../lib/node-load.js';
import { startNodeChild } from '../lib/proc.js';
import { benchRequest } from '../lib/requests.js';
import { distinctTokens, type BenchAlg } from '../lib/tokens.js';
import type { Scenario } from '../lib/scenario.js';
import type { ScenarioResult, Target } from '../lib/types.js';
import type { VerifyRates } from '../lib/verify-rate-child.js';
import { grpcFrame } from '../lib/wire.js';

const RATE_CHILD = fileURLToPath(new URL('../lib/verify-rate-child.js', import.meta.url));

export const uniqueTokens: Scenario = {
  name: 'unique-tokens',
  title: 'Distinct tokens: every call verifies a signature (RS256, ES256)',
  description:
    'Every request carries a token the server has never seen, so the token cache never hits and each check verifies a signature. Driven by the pure-Node generator (h2load sends one body); the baseline is driven by the same generator with the same bodies. On the server core, in the same run: the raw node:crypto verify rate, jose jwtVerify, and zt-authz\'s verification pipeline (its Authenticator) on the same distinct tokens.',
  async run(ctx) {
    const o = ctx.opts;
    const algs: BenchAlg[] = ['RS256', 'ES256'];
    const tokensByAlg = {} as Record<BenchAlg, string[]>;
    for (const alg of algs) {
      ctx.log(`  signing ${o.uniqueTokens.toLocaleString('en-US')} ${alg} tokens (cached in ${o.outDir}/.tokens)`);
      tokensByAlg[alg] = distinctTokens(alg, o.uniqueTokens, { users: 1000, cacheDir: `${o.outDir}/.tokens`, progress: (n) => ctx.log(`  signed ${n}`) });
    }
    const tokensFile = ctx.file('unique-tokens.json');
    writeFileSync(tokensFile, JSON.stringify(tokensByAlg));
    const rateChild = startNodeChild<VerifyRates>(RATE_CHILD, [o.quick ? '0.3' : '3', tokensFile], { cpus: ctx.cpus.server, logFile: ctx.file('verify-rate.log'), readyTimeoutMs: 180_000 });
    const rates = await rateChild.ready;
    await rateChild.stop();
    const result: ScenarioResult = {
      name: this.name,
      title: this.title,
      description: this.description,
      others: [],
      decisions: [],
      figures: [],
      targets: [],
      commands: [],
      notes: [
        'node generator: one JavaScript core; when the baseline ratio is low the generator, not the server, may be the limit for the baseline figure',
        'end to end, every call also pays a whole gRPC call on the same core: the no-op baseline alone runs below 0.5x of the raw verify rate, so the end-to-end ratio to raw verify is bounded by the transport, not the verifier; the target compares the verifier',
      ],
    };
    const targets: Target[] = [];
    for (const alg of algs) {
      const tokens = tokensByAlg[alg];
      const frames = tokens.map((token) => grpcFrame(benchRequest({ token })));
      const framesFile = writeFrames(o.workDir, `unique-${alg}`, frames);
      const warmup = Math.min(2000, Math.floor(tokens.length / 10));
      const load = { connections: o.nodeConnections, concurrency: o.nodeConcurrency, requests: tokens.length - warmup, warmup, cpus: ctx.cpus.load, workDir: o.workDir };
      const baseline = await ctx.startBaseline();
      const b = await runNodeLoad(baseline.grpc, framesFile, { ...load, name: `unique-${alg}-baseline`, progress: ctx.progress(`${alg} baseline`) });
      await baseline.stop();
      const server = await ctx.startServer(`zt-authz ${alg}`, benchConfig({ decisionLog: o.decisionLog }));
      await ctx.expectReasons(server, [{ name: `fresh ${alg} token`, req: benchRequest({ token: tokens[0]! }), reason: 'allowed' }]);
      const before = await server.scrape();
      const s = await runNodeLoad(server.grpc, framesFile, { ...load, name: `unique-${alg}`, progress: ctx.progress(`${alg} server`) });
      const after = await server.scrape();
      await server.stop();
      if (s.result.rpcErrors > 0) throw new Error(`${alg}: ${s.result.rpcErrors} RPC errors (${s.result.firstError})`);
      // The probe verified tokens[0] once; its load request then hit the cache (still an allow).
      result.decisions.push(checkExact(new Map([['allowed', s.result.sent]]), decisionDelta(before, after)));
      const { crypto, pipeline, ratio: pipelineRatio } = rates[alg];
      const ratio = s.result.reqPerSec / b.result.reqPerSec;
      ctx.log(`  ${alg}: ${Math.round(s.result.reqPerSec)} req/s, baseline ${Math.round(b.result.reqPerSec)}, node:crypto verify ${Math.round(crypto)}/s, zt-authz pipeline ${Math.round(pipeline)}/s, jose ${Math.round(rates[alg].jose)}/s`);
      result.figures.push(
        { label: `${alg} server req/s`, value: Math.round(s.result.reqPerSec), unit: 'req/s' },
        { label: `${alg} baseline req/s (node generator)`, value: Math.round(b.result.reqPerSec), unit: 'req/s' },
        { label: `${alg} server / baseline`, value: ratio, unit: 'x' },
        { label: `${alg} node:crypto verify rate`, value: Math.round(crypto), unit: '/s' },
        { label: `${alg} jose jwtVerify rate`, value: Math.round(rates[alg].jose), unit: '/s' },
        { label: `${alg} zt-authz verification pipeline rate`, value: Math.round(pipeline), unit: '/s' },
        { label: `${alg} zt-authz pipeline / node:crypto verify (median of per-round ratios)`, value: pipelineRatio, unit: 'x' },
        { label: `${alg} end to end / node:crypto verify`, value: s.result.reqPerSec / crypto, unit: 'x' },
        // What a gRPC call costs with no work at all bounds the end-to-end figure on one core.
        { label: `${alg} no-op baseline / node:crypto verify (end-to-end ceiling)`, value: b.result.reqPerSec / crypto, unit: 'x' },
        { label: `${alg} jose / node:crypto verify`, value: rates[alg].jose / crypto, unit: 'x' },
      );
      if (alg === 'RS256') {
        targets.push({ name: 'RS256 distinct tokens: zt-authz verification pipeline vs raw node:crypto verify', value: pipelineRatio, target: '>= 0.85x', met: pipelineRatio >= 0.85 });
        result.throughput = { server: s.result.reqPerSec, baseline: b.result.reqPerSec, ratio, rounds: [{ server: s.result.reqPerSec, baseline: b.result.reqPerSec }], generator: 'node' };
      } else {
        result.others.push({ label: 'ES256 distinct tokens', reqPerSec: s.result.reqPerSec, ratio: s.result.reqPerSec / b.result.reqPerSec });
      }
      result.commands.push(s.command);
    }
    result.targets.push(...targets);
    return result;
  },
};
