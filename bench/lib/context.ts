import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WireCheckRequest } from '../../src/wire/check-request.js';
import { authzClient, type AuthzClient } from '../../test/helpers/grpc.js';
import { runH2load, type H2loadLoad, type H2loadResult } from './h2load.js';
import { decisionDelta, scrape, type MetricsSnapshot } from './metrics.js';
import { cpuPlan, startNodeChild, type Child, type CpuPlan } from './proc.js';
import type { ServerReady, ServerSpec, StateSeed } from './server-child.js';
import type { ConfigInput } from '../../src/config/schema/index.js';
import type { BenchOptions, DecisionCheck } from './types.js';
import { median } from './stats.js';

const SERVER_CHILD = fileURLToPath(new URL('./server-child.js', import.meta.url));
const BASELINE_CHILD = fileURLToPath(new URL('./baseline-child.js', import.meta.url));

export interface Target {
  readonly label: string;
  readonly grpc: string;
}

export interface RunningServer extends Target {
  readonly http: string;
  readonly pid: number;
  readonly client: AuthzClient;
  /** The reason the server gives for this request ('allowed' for an allow), over a real grpc-js client. */
  probe(req: WireCheckRequest): Promise<string>;
  scrape(): Promise<MetricsSnapshot>;
  /** Resident set size of the server process tree (primary + workers), bytes, from /proc. */
  rssBytes(): number;
  stop(): Promise<void>;
}

export interface RunningBaseline extends Target {
  readonly pid: number;
  stop(): Promise<void>;
}

let seq = 0;

export class BenchContext {
  readonly cpus: CpuPlan;
  private readonly started = Date.now();
  private readonly cleanups: (() => Promise<void>)[] = [];
  /** Shared between scenarios of one run (latency scenario reuses the measured max). */
  readonly shared: { maxAllowRps?: number } = {};

  constructor(readonly opts: BenchOptions) {
    this.cpus = cpuPlan(opts.pin);
  }

  log(msg: string): void {
    const s = ((Date.now() - this.started) / 1000).toFixed(1).padStart(6);
    process.stderr.write(`[${s}s] ${msg}\n`);
  }

  /** A progress line for long loops, at most every 2 s. */
  progress(label: string): (done: number, total: number) => void {
    let last = 0;
    return (done, total) => {
      const now = Date.now();
      if (now - last < 2000 && done < total) return;
      last = now;
      this.log(`  ${label}: ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} (${Math.round((100 * done) / total)} %)`);
    };
  }

  rssOf(pid: number): number {
    return treeRss(pid);
  }

  file(name: string): string {
    return join(this.opts.workDir, name);
  }

  onCleanup(fn: () => Promise<void>): void {
    this.cleanups.push(fn);
  }

  async cleanup(): Promise<void> {
    for (const fn of this.cleanups.splice(0).reverse()) await fn().catch(() => undefined);
  }

  async startServer(label: string, config: ConfigInput, seed?: StateSeed, workers = this.opts.workers): Promise<RunningServer> {
    const n = ++seq;
    const specFile = this.file(`server-${n}.json`);
    const spec: ServerSpec = seed ? { config, workers, seed } : { config, workers };
    writeFileSync(specFile, JSON.stringify(spec));
    const nodeArgs = this.opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${this.opts.cpuProfDir}`] : [];
    const child: Child<ServerReady> = startNodeChild<ServerReady>(SERVER_CHILD, [specFile], {
      cpus: this.cpus.server,
      logFile: this.file(`server-${n}.log`),
      nodeArgs,
      env: { NODE_OPTIONS: this.opts.nodeOptions },
    });
    const ready = await child.ready;
    const client = authzClient(ready.grpc);
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      client.close();
      await child.stop();
    };
    this.onCleanup(stop);
    return {
      label,
      grpc: ready.grpc,
      http: ready.http,
      pid: ready.pid,
      client,
      async probe(req) {
        const r = await client.check(req, { deadlineMs: 5000 });
        if (r.rpcCode !== 0) return `rpc-error-${r.rpcCode}`;
        const reason = r.response?.dynamic_metadata?.fields?.reason;
        if (reason && 'stringValue' in reason) return String(reason.stringValue);
        return (r.response?.status?.code ?? 0) === 0 ? 'allowed' : (r.response?.status?.message ?? 'unknown');
      },
      scrape: () => scrape(ready.http),
      rssBytes: () => treeRss(ready.pid),
      stop,
    };
  }

  async startBaseline(): Promise<RunningBaseline> {
    const n = ++seq;
    const child = startNodeChild<{ grpc: string; pid: number }>(BASELINE_CHILD, ['127.0.0.1:0'], {
      cpus: this.cpus.server,
      logFile: this.file(`baseline-${n}.log`),
      env: { NODE_OPTIONS: this.opts.nodeOptions },
    });
    const ready = await child.ready;
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await child.stop();
    };
    this.onCleanup(stop);
    return { label: 'no-op baseline', grpc: ready.grpc, pid: ready.pid, stop };
  }

  /** Probes that each request gets the expected reason before any load runs. */
  async expectReasons(server: RunningServer, cases: readonly { name: string; req: WireCheckRequest; reason: string }[]): Promise<void> {
    const wrong: string[] = [];
    for (const c of cases) {
      const got = await server.probe(c.req);
      if (got !== c.reason) wrong.push(`${c.name}: expected ${c.reason}, got ${got}`);
    }
    if (wrong.length > 0) throw new Error(`probe of ${server.label} failed:\n  ${wrong.join('\n  ')}`);
  }

  h2load(target: Target, bodyFile: string, load: Partial<H2loadLoad> = {}, logFile?: string): Promise<H2loadResult> {
    const full: H2loadLoad = {
      clients: Math.max(this.opts.clients, this.opts.workers),
      streams: this.opts.streams,
      durationS: this.opts.durationS,
      warmUpS: this.opts.warmUpS,
      ...load,
    };
    return runH2load(target.grpc, bodyFile, full, logFile ? { cpus: this.cpus.load, logFile } : { cpus: this.cpus.load });
  }

  /**
   * Rounds of [baseline, each server] with the same h2load load, interleaved so that drift on a
   * shared machine hits every series alike. Returns medians per series and the decisions counted
   * by each server.
   */
  async interleavedH2load(
    baseline: RunningBaseline,
    servers: readonly RunningServer[],
    bodyFile: string,
  ): Promise<{ baseline: number[]; servers: number[][]; decisions: Map<string, number>[]; measured: number[]; commands: string[] }> {
    const base: number[] = [];
    const per: number[][] = servers.map(() => []);
    const decisions = servers.map(() => new Map<string, number>());
    const measured = servers.map(() => 0);
    const commands: string[] = [];
    // The order rotates every round: whatever runs third on a busy machine runs slower (seen here:
    // the same server measured 15 % lower in third place), so each target gets every position.
    const slots = [-1, ...servers.keys()];
    for (let r = 0; r < this.opts.rounds; r++) {
      const order = slots.map((_, k) => slots[(k + r) % slots.length]!);
      let roundBase = 0;
      const roundServers: [number, number][] = [];
      for (const i of order) {
        if (i === -1) {
          const b = await this.h2load(baseline, bodyFile);
          assertClean(b, baseline.label);
          base.push(b.reqPerSec);
          roundBase = b.reqPerSec;
          if (r === 0) commands.push(b.command);
          this.log(`  round ${r + 1}/${this.opts.rounds}: ${baseline.label} ${fmt(b.reqPerSec)} req/s`);
          continue;
        }
        const s = servers[i]!;
        const before = await s.scrape();
        const res = await this.h2load(s, bodyFile);
        const after = await s.scrape();
        assertClean(res, s.label);
        per[i]!.push(res.reqPerSec);
        measured[i]! += res.succeeded;
        for (const [k, v] of decisionDelta(before, after)) decisions[i]!.set(k, (decisions[i]!.get(k) ?? 0) + v);
        if (r === 0) commands.push(res.command);
        roundServers.push([i, res.reqPerSec]);
      }
      for (const [i, rps] of roundServers) {
        this.log(`  round ${r + 1}/${this.opts.rounds}: ${servers[i]!.label} ${fmt(rps)} req/s (${(rps / roundBase).toFixed(2)}x baseline)`);
      }
    }
    return { baseline: base, servers: per, decisions, measured, commands };
  }
  /**
   * Rounds in which the baseline and one server share the server core at the same time, each
   * driven by its own h2load (both on the load CPU) with the same load. The kernel splits the core
   * between the two busy processes, so the ratio of their rates is the ratio of their costs per
   * call, and whatever slows the machine down in a given millisecond slows both. Sequential rounds
   * cannot cancel that: here two runs a few seconds apart differ by up to 2x. The CPU time each
   * process got is returned so the split can be checked.
   */
  async simultaneousH2load(
    baseline: RunningBaseline,
    server: RunningServer,
    bodyFile: string,
  ): Promise<{ baseline: number[]; server: number[]; serverCpuShare: number[]; perCpuSecond: number[]; decisions: Map<string, number>; measured: number; commands: string[] }> {
    const base: number[] = [];
    const srv: number[] = [];
    const share: number[] = [];
    // Calls per CPU-second, server over baseline: the ratio with an uneven split taken out.
    const perCpu: number[] = [];
    const decisions = new Map<string, number>();
    let measured = 0;
    const commands: string[] = [];
    for (let r = 0; r < this.opts.rounds; r++) {
      const before = await server.scrape();
      const cpuBefore = [treeCpuSeconds(baseline.pid), treeCpuSeconds(server.pid)] as const;
      // Whichever h2load starts second does ~5 % fewer calls against an identical server (seen
      // here with two memory-store servers), so the start order alternates from round to round.
      const baselineFirst = r % 2 === 0;
      const serverRun = baselineFirst ? undefined : this.h2load(server, bodyFile);
      const baselineRun = this.h2load(baseline, bodyFile);
      const [b, s] = await Promise.all([baselineRun, serverRun ?? this.h2load(server, bodyFile)]);
      const cpuB = treeCpuSeconds(baseline.pid) - cpuBefore[0];
      const cpuS = treeCpuSeconds(server.pid) - cpuBefore[1];
      const after = await server.scrape();
      assertClean(b, baseline.label);
      assertClean(s, server.label);
      base.push(b.reqPerSec);
      srv.push(s.reqPerSec);
      share.push(cpuS / (cpuS + cpuB));
      perCpu.push(s.succeeded / cpuS / (b.succeeded / cpuB));
      measured += s.succeeded;
      for (const [k, v] of decisionDelta(before, after)) decisions.set(k, (decisions.get(k) ?? 0) + v);
      if (r === 0) commands.push(`${b.command}  &  ${s.command}   (at the same time; which one starts first alternates by round)`);
      this.log(
        `  simultaneous round ${r + 1}/${this.opts.rounds}: ${baseline.label} ${fmt(b.reqPerSec)} req/s, ${server.label} ${fmt(s.reqPerSec)} req/s ` +
          `(${(s.reqPerSec / b.reqPerSec).toFixed(2)}x; CPU split ${Math.round(100 * (1 - share.at(-1)!))}/${Math.round(100 * share.at(-1)!)})`,
      );
    }
    return { baseline: base, server: srv, serverCpuShare: share, perCpuSecond: perCpu, decisions, measured, commands };
  }
}

function assertClean(r: H2loadResult, label: string): void {
  if (r.failed + r.errored + r.timeout + r.statusOther > 0 || r.succeeded === 0) {
    throw new Error(`h2load against ${label}: ${r.succeeded} succeeded, ${r.failed} failed, ${r.errored} errored, ${r.timeout} timeouts, ${r.statusOther} non-2xx`);
  }
}

export function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export { median };

/** Every observed decision must carry one of the expected reasons, and at least `atLeast` of them. */
export function checkOnly(expectedReason: string, observed: ReadonlyMap<string, number>, atLeast: number): DecisionCheck {
  const obs = Object.fromEntries(observed);
  const problems: string[] = [];
  for (const [k, v] of observed) if (k !== expectedReason) problems.push(`${v} decisions with reason ${k}`);
  const n = observed.get(expectedReason) ?? 0;
  if (n < atLeast) problems.push(`${n} ${expectedReason} decisions counted, fewer than the ${atLeast} requests h2load completed`);
  return { expected: { [expectedReason]: atLeast }, observed: obs, mode: 'only', ok: problems.length === 0, problems };
}

export function checkExact(expected: ReadonlyMap<string, number>, observed: ReadonlyMap<string, number>): DecisionCheck {
  const problems: string[] = [];
  for (const k of new Set([...expected.keys(), ...observed.keys()])) {
    const e = expected.get(k) ?? 0;
    const o = observed.get(k) ?? 0;
    if (e !== o) problems.push(`${k}: expected ${e}, counted ${o}`);
  }
  return { expected: Object.fromEntries(expected), observed: Object.fromEntries(observed), mode: 'exact', ok: problems.length === 0, problems };
}

/** VmRSS of a process and its children (cluster workers), bytes. */
export function treeRss(pid: number): number {
  return sumOverTree(pid, (p) => {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : 0;
  });
}

/** utime + stime of a process and its children (cluster workers), seconds. */
export function treeCpuSeconds(pid: number): number {
  return sumOverTree(pid, (p) => {
    const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15, in USER_HZ (100).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  });
}

function sumOverTree(pid: number, of: (pid: number) => number): number {
  let total = 0;
  const visit = (p: number) => {
    try {
      total += of(p);
      const children = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      for (const c of children.split(/\s+/).filter(Boolean)) visit(Number(c));
    } catch {
      // The process is gone or /proc is unavailable: count what we have.
    }
  };
  visit(pid);
  return total;
}
