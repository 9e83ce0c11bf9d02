/**
 * zt-authz load-test harness. Starts the server under test and a no-op grpc-js baseline, drives
 * both with the same load, checks the decisions on the server's metrics, and writes a table, a
 * JSON result and a self-contained HTML report. See the README "Performance" section.
 *
 *   npm run bench -- [--quick] [--scenario NAME]... [--workers N] [--out DIR]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, availableParallelism, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../src/wire/protos.js';
import { BenchContext } from './lib/context.js';
import { renderHtml } from './lib/report-html.js';
import { renderTable } from './lib/report-table.js';
import type { BenchOptions, ScenarioResult } from './lib/types.js';
import { deployedNodeOptions } from './lib/node-options.js';
import { runCommand } from './lib/proc.js';
import { SCENARIOS } from './scenarios/index.js';

const USAGE = `Usage: npm run bench -- [options]

  --quick               seconds, not minutes: tiny sizes, one round (CI smoke test)
  --scenario NAME       run only this scenario (repeatable); names: ${SCENARIOS.map((s) => s.name).join(', ')}
  --workers N           server under test runs N node:cluster workers (default 1)
  --out DIR             where results go (default bench/results)
  --rounds N            interleaved baseline/server rounds (default 6, quick 1)
  --duration S          measured seconds per h2load run (default 5, quick 1)
  --warmup S            h2load warm-up seconds (default 2, quick 1)
  --clients N           h2load connections (default 2)
  --streams N           h2load concurrent streams per connection (default 32)
  --unique-tokens N     distinct-token scenario: tokens per algorithm (default 30000, quick 400)
  --mix-requests N      mix scenario: requests per run (default 60000, quick 2000)
  --memory-checks N     memory scenario: checks (default 1000000, quick 5000)
  --memory-tokens N     memory scenario: distinct tokens (default 100000, quick 1000)
  --decision-log MODE   server decision log: none (default), deny or all
  --node-options S      NODE_OPTIONS for the server and the baseline (default: those of
                        deploy/overlays/sidecar/deployment.yaml; '' for V8's defaults)
  --no-pin              do not pin server and load generator to separate CPUs
  --cpu-prof DIR        run the server under test with node --cpu-prof, profiles into DIR
`;

function num(v: string | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: expected a positive number, got ${v}`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      scenario: { type: 'string', multiple: true },
      workers: { type: 'string' },
      out: { type: 'string' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      clients: { type: 'string' },
      streams: { type: 'string' },
      'unique-tokens': { type: 'string' },
      'mix-requests': { type: 'string' },
      'memory-checks': { type: 'string' },
      'memory-tokens': { type: 'string' },
      'decision-log': { type: 'string' },
      'no-pin': { type: 'boolean' },
      'node-options': { type: 'string' },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const quick = values.quick ?? false;
  const names = values.scenario ?? SCENARIOS.map((s) => s.name);
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const decisionLog = values['decision-log'] ?? 'none';
  if (decisionLog !== 'none' && decisionLog !== 'deny' && decisionLog !== 'all') throw new Error('--decision-log: none, deny or all');
  const h2 = await runCommand('h2load', ['--version'], { timeoutMs: 5000 }).catch(() => undefined);
  if (!h2 || h2.code !== 0) throw new Error('h2load not found: install nghttp2-client (apt-get install nghttp2-client)');

  const outDir = values.out ?? join(packageRoot(), 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const workDir = mkdtempSync(join(tmpdir(), 'zt-authz-bench-'));
  const opts: BenchOptions = {
    quick,
    workers: Math.floor(num(values.workers, 1, 'workers')),
    outDir,
    workDir,
    pin: !values['no-pin'],
    rounds: Math.floor(num(values.rounds, quick ? 1 : 6, 'rounds')),
    durationS: Math.ceil(num(values.duration, quick ? 1 : 5, 'duration')),
    warmUpS: Math.ceil(num(values.warmup, quick ? 1 : 2, 'warmup')),
    clients: Math.floor(num(values.clients, 2, 'clients')),
    streams: Math.floor(num(values.streams, 32, 'streams')),
    decisionLog,
    uniqueTokens: Math.floor(num(values['unique-tokens'], quick ? 400 : 30_000, 'unique-tokens')),
    mixRequests: Math.floor(num(values['mix-requests'], quick ? 2000 : 60_000, 'mix-requests')),
    memoryChecks: Math.floor(num(values['memory-checks'], quick ? 5000 : 1_000_000, 'memory-checks')),
    memoryTokens: Math.floor(num(values['memory-tokens'], quick ? 1000 : 100_000, 'memory-tokens')),
    nodeConnections: 2,
    nodeConcurrency: 32,
    nodeOptions: values['node-options'] ?? deployedNodeOptions(),
    cpuProfDir: values['cpu-prof'],
  };
  const ctx = new BenchContext(opts);
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: availableParallelism(),
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    h2load: h2.stdout.trim(),
    host: hostname(),
    pinning: ctx.cpus.description,
    workers: opts.workers,
    nodeOptions: opts.nodeOptions,
  };
  ctx.log(`zt-authz bench: ${names.length} scenario(s)${quick ? ' (quick)' : ''}; ${machine.cpus} x ${machine.cpu}; ${machine.pinning}; NODE_OPTIONS=${JSON.stringify(opts.nodeOptions)}`);
  const results: ScenarioResult[] = [];
  const failures: string[] = [];
  const stopping = () => {
    void ctx.cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', stopping);
  process.once('SIGTERM', stopping);
  try {
    for (const s of SCENARIOS.filter((x) => names.includes(x.name))) {
      ctx.log(`scenario ${s.name}: ${s.title}`);
      try {
        const r = await s.run(ctx);
        results.push(r);
        for (const d of r.decisions) if (!d.ok) failures.push(`${s.name}: wrong decisions: ${d.problems.join('; ')}`);
      } catch (err) {
        failures.push(`${s.name}: ${(err as Error).message}`);
        ctx.log(`scenario ${s.name} FAILED: ${(err as Error).stack ?? String(err)}`);
      } finally {
        await ctx.cleanup();
      }
    }
  } finally {
    await ctx.cleanup();
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const report = { generated: new Date().toISOString(), command: `npm run bench -- ${argv.join(' ')}`.trim(), machine, options: { ...opts, workDir: undefined }, results, failures };
  const jsonFile = join(outDir, `bench-${stamp}.json`);
  const htmlFile = join(outDir, `bench-${stamp}.html`);
  writeFileSync(jsonFile, JSON.stringify(report, null, 2));
  writeFileSync(htmlFile, renderHtml(report));
  writeFileSync(join(outDir, 'latest.json'), JSON.stringify(report, null, 2));
  writeFileSync(join(outDir, 'latest.html'), renderHtml(report));
  process.stdout.write(renderTable(report) + '\n');
  process.stdout.write(`\nJSON: ${jsonFile}\nHTML: ${htmlFile}\n`);
  if (failures.length) {
    process.stdout.write(`\nFAILED:\n  ${failures.join('\n  ')}\n`);
  } else {
    rmSync(workDir, { recursive: true, force: true });
  }
  return failures.length ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  },
);
