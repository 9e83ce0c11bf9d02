/**
 * Mesh scale of the Redis-held state: N simulated sidecars' state clients (real RedisStateStore
 * instances, run in a few child processes) against one real redis-server with E listed entries.
 * Reports Redis command time (INFO commandstats) and CPU (INFO cpu) per sidecar in quiet steady
 * state, under a plain-SET write load, and through a restart storm (SIGTERM with AOF, restart on
 * the same port); connections (CLIENT LIST); write -> enforced p50/p99 on every sidecar; mirror
 * memory per entry (one sidecar in a child process: RSS/heap after GC with E entries minus with
 * none); and the extrapolation to 10,000 sidecars with the model it uses.
 *
 * The fleet's sidecars run with a bench-only mirror (bench/lib/probe-mirror.ts) that keeps only
 * the keys the bench probes (suspended_user:w-*) and counts the rest: 500 real mirrors of a
 * million entries would not fit in one machine. Everything the fleet part measures is Redis's
 * side and is unchanged by it: each sidecar still reads the snapshot (or its changed buckets) and re-reads every
 * invalidated key (it skips decoding the pages, client CPU that would starve 125 sidecars sharing
 * a process). The sidecars alone in a process (--alone) and the memory probe run the product's
 * Mirror and decoder.
 *
 * Invalidation fan-out: with BCAST tracking Redis sends every subscriber a message per written
 * key, and that work is charged to the writer (the SET, or the event loop right after it), not to
 * any sidecar command. So the write load is also run once before the fleet starts, and the report
 * gives SET µs per call with the fleet minus without it, and the Redis CPU per write beyond the
 * quiet steady state; the extrapolation includes the fan-out.
 *
 * In production Redis has cores of its own; here the fleet shares this machine's two with it, and
 * Redis's command time is wall-clock inside each command, so every moment the kernel hands its
 * core to a client counts as Redis time. --redis-nice -10 runs redis-server at a higher priority
 * (raising one needs root or CAP_SYS_NICE; the header says when it could not), closer to a Redis
 * with cores of its own: the clients, not Redis, then absorb the contention. The default, 0,
 * shares the cores equally, so Redis's figures include time it waited for a core. Measured, the
 * higher priority lowers Redis's command times but lengthens the clients' write -> enforced tail.
 *
 * The fleet's sidecars share a process 125 to one, which no pod does: every write reaches all
 * 125 at the same instant, and the last of them is served a process's whole burst later. So
 * --alone N (default 4) of the sidecars run alone in a process each, with the product's Mirror
 * and decoder, and write -> enforced is reported for them as well: what a pod sees while the
 * fleet loads Redis. Through the restart storm their event loop's delay is reported too.
 * The groups' tail is their GC on oversubscribed cores: with --trace-gc, scavenges of 20-50 ms
 * and mark-compacts up to 250 ms in the write window (--single-threaded-gc made it no better).
 *
 * The restart storm writes --away-writes N entries (default 100; half new, half deleted) through
 * another redis-server on the same data while the fleet's Redis is down, so the catch-up has
 * something it never saw: a sidecar reads only the snapshot buckets those writes changed.
 *
 * Every wait has a bound and says what it waited for; child processes exit when the parent goes
 * away; redis-server and the children are stopped on any failure.
 *
 * Run: npm run build && node dist/bench/state-scale.js [--sidecars 500] [--entries 100000]
 *        [--procs 4] [--alone 4] [--steady-s 60] [--writes-per-s 100] [--write-s 30] [--away-writes 100]
 *        [--redis-nice 0] [--memory-only]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { stateSchema } from '../src/config/schema/state.js';
import { silentLogger } from '../src/observability/logger.js';
import { createMetrics } from '../src/observability/metrics.js';
import { RedisStateStore } from '../src/state/redis-store.js';
import { packSnapshot, scanNode, snapshotKeys } from '../src/state/snapshot.js';
import { startRedis, type RedisProcess } from '../test/helpers/redis.js';
import { ProbeMirror, skipDecode } from './lib/probe-mirror.js';

const SELF = fileURLToPath(import.meta.url);
/** Sidecars started one at a time after the storm (pod churn). */
const PODS = 3;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();

function storeConfig(url: string, prefix = '') {
  // As shipped, apart from the URL: heartbeat 1 s, no periodic resync, remediation off (not measured here).
  return stateSchema.parse({ backend: 'redis', redis: { url, key_prefix: prefix }, remediation: { enabled: false } });
}

// ---------------------------------------------------------------- child: a group of sidecars

type ToChild = { t: 'expect'; user: string; at: number } | { t: 'status' } | { t: 'prop' } | { t: 'loop' } | { t: 'quit' };
type FromChild =
  | { t: 'status'; synced: number; total: number; built: number; incremental: number; logged: number; logKeys: number; bytesRead: number; resyncs: number; failed: number; buildReasons: Tally; keeperStops: Tally }
  | { t: 'prop'; samples: number[]; missing: number }
  /** Since the last 'loop': the event loop's delay (ms; what a request arriving then waited) and the process's CPU. */
  | { t: 'loop'; p99: number; max: number; cpuMs: number }
  | { t: 'mem'; rss: number; heap: number; entries: number };

/** A child whose parent died, crashed or lost the channel must not live on holding connections. */
function exitWithParent(): void {
  process.on('disconnect', () => process.exit(1));
  process.on('uncaughtException', (err) => {
    console.error(`${process.argv[2]} child ${process.pid}:`, err);
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    console.error(`${process.argv[2]} child ${process.pid}:`, err);
    process.exit(1);
  });
}

/** `real`: the product's Mirror and decoder, as in a pod; otherwise the probe mirror (see above). */
async function sidecarGroup(url: string, count: number, real: boolean): Promise<void> {
  exitWithParent();
  const metrics = createMetrics();
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  let cpu0 = process.cpuUsage();
  const stores: RedisStateStore[] = [];
  for (let i = 0; i < count; i++) {
    const s = new RedisStateStore(storeConfig(url), real ? { logger: silentLogger, metrics } : { logger: silentLogger, metrics, mirror: new ProbeMirror(), decodeSnapshot: skipDecode });
    stores.push(s);
    void s.start();
    // Spread the initial connects a little, as pods starting over a few seconds would.
    if (i % 25 === 24) await sleep(50);
  }
  const send = (m: FromChild) => process.send?.(m);
  let pending: { user: string; at: number; seen: boolean[]; left: number }[] = [];
  let samples: number[] = [];
  const poll = setInterval(() => {
    if (pending.length === 0) return;
    const t = now();
    const ms = Date.now();
    for (const p of pending) {
      for (let i = 0; i < stores.length; i++) {
        if (p.seen[i] || stores[i]!.userSuspended(p.user, ms) !== 'listed') continue;
        p.seen[i] = true;
        p.left--;
        samples.push(t - p.at);
      }
    }
    pending = pending.filter((p) => p.left > 0 && t - p.at < 10_000);
  }, 1);
  process.on('message', (m: ToChild) => {
    if (m.t === 'expect') pending.push({ user: m.user, at: m.at, seen: stores.map(() => false), left: stores.length });
    else if (m.t === 'status') {
      // Resyncs done and failed, summed over this child's stores (they share one registry).
      void Promise.all([metrics.stateEvents.get(), tally(metrics.stateSnapshotBuilds), tally(metrics.stateKeeperStops)]).then(([c, buildReasons, keeperStops]) => {
        const count = (event: string) => c.values.find((v) => v.labels['event'] === event)?.value ?? 0;
        send({ t: 'status', synced: stores.filter((s) => s.synced).length, total: stores.length, built: stores.filter((s) => s.lastSnapshotSource === 'built').length, incremental: stores.filter((s) => s.lastSnapshotSource === 'incremental').length, logged: stores.filter((s) => s.lastLogKeys !== undefined).length, logKeys: stores.reduce((n, s) => n + (s.lastLogKeys ?? 0), 0), bytesRead: stores.reduce((n, s) => n + s.lastSnapshotBytes, 0), resyncs: count('resync'), failed: count('error'), buildReasons, keeperStops });
      });
    }
    else if (m.t === 'prop') {
      send({ t: 'prop', samples, missing: pending.reduce((n, p) => n + p.left, 0) });
      samples = [];
    } else if (m.t === 'loop') {
      const cpu = process.cpuUsage(cpu0);
      send({ t: 'loop', p99: loop.percentile(99) / 1e6, max: loop.max / 1e6, cpuMs: (cpu.user + cpu.system) / 1000 });
      loop.reset();
      cpu0 = process.cpuUsage();
    } else if (m.t === 'quit') {
      clearInterval(poll);
      void Promise.all(stores.map((s) => s.close())).then(() => process.exit(0));
    }
  });
}

/** One sidecar, alone in its process: memory after GC once it is in sync. */
async function memoryProbe(url: string, prefix: string): Promise<void> {
  exitWithParent();
  const gc = (globalThis as { gc?: () => void }).gc;
  const store = new RedisStateStore(storeConfig(url, prefix), { logger: silentLogger, metrics: createMetrics() });
  await store.start();
  while (!store.synced) await sleep(50);
  for (let i = 0; i < 3; i++) {
    gc?.();
    await sleep(200);
  }
  const mu = process.memoryUsage();
  const c = (store as unknown as { mirror: { counts(): Record<string, number> } }).mirror.counts();
  const entries = Object.values(c).reduce((a, b) => a + b, 0);
  process.send?.({ t: 'mem', rss: mu.rss, heap: mu.heapUsed, entries } satisfies FromChild);
  await store.close();
  process.exit(0);
}

// ---------------------------------------------------------------- parent

interface Stats {
  cmd: Map<string, { calls: number; usec: number }>;
  cpu: number;
}

async function stats(r: Redis): Promise<Stats> {
  const info = await r.info('all');
  const cmd = new Map<string, { calls: number; usec: number }>();
  let cpu = 0;
  for (const line of info.split('\r\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (m) cmd.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
    const c = /^used_cpu_(sys|user):([\d.]+)/.exec(line);
    if (c) cpu += Number(c[2]);
  }
  return { cmd, cpu };
}

/** Commands the bench itself sends, and (where scripts ran) the ones only our scripts call: their time is inside EVALSHA's. */
const BENCH_OWN = new Set(['info', 'config|resetstat', 'client|list', 'dbsize', 'config|set']);
const SCRIPT_INNER = new Set(['scan', 'pexpiretime', 'time', 'type', 'append', 'pexpire', 'strlen', 'exists', 'persist', 'del', 'get', 'set', 'hget', 'pttl']);

function delta(a: Stats, b: Stats, exclude: Set<string>): { usec: number; cpu: number; by: [string, number, number][] } {
  let usec = 0;
  const by: [string, number, number][] = [];
  for (const [name, v] of b.cmd) {
    if (BENCH_OWN.has(name) || exclude.has(name)) continue;
    const prev = a.cmd.get(name) ?? { calls: 0, usec: 0 };
    const d = v.usec - prev.usec;
    if (d <= 0 && v.calls === prev.calls) continue;
    usec += d;
    by.push([name, v.calls - prev.calls, d]);
  }
  by.sort((x, y) => y[2] - x[2]);
  return { usec, cpu: b.cpu - a.cpu, by };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function seed(r: Redis, entries: number): Promise<void> {
  // 90 % exact IPv4 blocks (what auto-remediation writes), 10 % suspended users; 1 day TTL.
  const BATCH = 10_000;
  for (let i = 0; i < entries; i += BATCH) {
    const p = r.pipeline();
    for (let j = i; j < Math.min(entries, i + BATCH); j++) {
      if (j % 10 === 9) p.set(`suspended_user:user-${j}`, 'true', 'EX', 86_400);
      else p.set(`blocked_ip:10.${(j >> 16) & 255}.${(j >> 8) & 255}.${j & 255}`, 'true', 'EX', 86_400);
    }
    await p.exec();
  }
}

/** Half new exact blocks, half seeded ones deleted (j % 10 == 0 is a seeded blocked_ip). */
const AWAY_WRITES = `
local n = tonumber(ARGV[1])
for i = 1, n do
  if i % 2 == 0 then
    redis.call('SET', 'blocked_ip:172.16.' .. (math.floor(i / 256) % 256) .. '.' .. (i % 256), 'true', 'EX', 86400)
  else
    local j = i * 10
    redis.call('DEL', 'blocked_ip:10.' .. (math.floor(j / 65536) % 256) .. '.' .. (math.floor(j / 256) % 256) .. '.' .. (j % 256))
  end
end
return n`;

/** A busy child (500 sidecars decoding a million entries each) can take a while to answer. */
const ANSWER_MS = 120_000;

function request<T extends FromChild['t']>(kids: ChildProcess[], t: T): Promise<Extract<FromChild, { t: T }>[]> {
  return Promise.all(
    kids.map(
      (k) =>
        new Promise<Extract<FromChild, { t: T }>>((resolve, reject) => {
          const done = () => {
            clearTimeout(timer);
            k.off('message', on);
            k.off('exit', onExit);
          };
          const on = (m: FromChild) => {
            if (m.t !== t) return;
            done();
            resolve(m as Extract<FromChild, { t: T }>);
          };
          const onExit = (code: number | null) => {
            done();
            reject(new Error(`sidecar group ${k.pid} exited (${code}) before answering '${t}'`));
          };
          const timer = setTimeout(() => {
            done();
            reject(new Error(`sidecar group ${k.pid} did not answer '${t}' within ${ANSWER_MS / 1000} s`));
          }, ANSWER_MS);
          k.on('message', on);
          k.once('exit', onExit);
          k.send({ t });
        }),
    ),
  );
}

/** Resolves when `p` does, or fails after `ms` saying what was awaited. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}`)), ms)));
  return Promise.race([p, bound]).finally(() => clearTimeout(timer));
}

/** Counts by label value (a counter with one label: reason). */
type Tally = Record<string, number>;

async function tally(counter: { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> }): Promise<Tally> {
  const out: Tally = {};
  for (const v of (await counter.get()).values) out[String(v.labels['reason'])] = (out[String(v.labels['reason'])] ?? 0) + v.value;
  return out;
}

function addTallies(ts: Tally[]): Tally {
  const out: Tally = {};
  for (const t of ts) for (const [k, n] of Object.entries(t)) out[k] = (out[k] ?? 0) + n;
  return out;
}

/** "a 2, b 1" of what `now` counts beyond `before`; "none" when nothing. */
function tallySince(now: Tally, before: Tally = {}): string {
  const parts = Object.entries(now)
    .map(([k, n]) => [k, n - (before[k] ?? 0)] as const)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${fmt(n)}`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}

type Status = Extract<FromChild, { t: 'status' }>;

async function allSynced(kids: ChildProcess[]): Promise<Omit<Status, 't'>> {
  return sumStatus(await request(kids, 'status'));
}

function sumStatus(s: Status[]): Omit<Status, 't'> {
  const sum = (f: (x: (typeof s)[number]) => number) => s.reduce((a, b) => a + f(b), 0);
  return {
    buildReasons: addTallies(s.map((x) => x.buildReasons)),
    keeperStops: addTallies(s.map((x) => x.keeperStops)),
    synced: sum((x) => x.synced),
    total: sum((x) => x.total),
    built: sum((x) => x.built),
    incremental: sum((x) => x.incremental),
    logged: sum((x) => x.logged),
    logKeys: sum((x) => x.logKeys),
    bytesRead: sum((x) => x.bytesRead),
    resyncs: sum((x) => x.resyncs),
    failed: sum((x) => x.failed),
  };
}

/** Fractions of the fleet whose first moment in sync a wait records (see `reached`). */
const MILESTONES = [0.5, 0.9, 0.99];

/**
 * `alone.ms` is set to when every sidecar in `alone.kids` (a process each, as in a pod) was in
 * sync: unlike the fleet's, that time is not spent queueing behind a hundred other sidecars'
 * reads in the same process on a shared core.
 */
async function waitSynced(kids: ChildProcess[], want: (s: { synced: number; total: number }) => boolean, timeoutMs: number, what: string, reached: number[] = [], alone?: { kids: ChildProcess[]; ms?: number }): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const per = await request(kids, 'status');
    const s = sumStatus(per);
    if (alone !== undefined && alone.ms === undefined && alone.kids.length > 0 && alone.kids.every((k) => per[kids.indexOf(k)]?.synced === 1)) alone.ms = Date.now() - t0;
    MILESTONES.forEach((m, i) => {
      if (reached[i] === undefined && s.synced >= m * s.total) reached[i] = Date.now() - t0;
    });
    if (want(s)) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}: ${s.synced}/${s.total} in sync`);
    await sleep(100);
  }
}

async function memory(url: string, entries: number, kids: Set<ChildProcess>): Promise<void> {
  const probe = (prefix: string) => {
    const k = fork(SELF, ['--mem', url, prefix], { execArgv: ['--expose-gc', '--max-old-space-size=8192'] });
    kids.add(k);
    k.once('exit', () => kids.delete(k));
    const answer = new Promise<Extract<FromChild, { t: 'mem' }>>((resolve, reject) => {
      k.once('message', (m: FromChild) => (m.t === 'mem' ? resolve(m) : reject(new Error(`memory probe sent '${m.t}'`))));
      k.once('exit', (code) => reject(new Error(`memory probe exited (${code}) before reporting`)));
    });
    return within(answer, 300_000, `the memory probe (prefix '${prefix}') to sync and report`).finally(() => k.kill('SIGKILL'));
  };
  const empty = await probe('nothing-listed-here:');
  const full = await probe('');
  const per = (a: number, b: number) => (b - a) / full.entries;
  console.log(`\n## Mirror memory (one sidecar, after GC)  entries in mirror: ${fmt(full.entries)} (seeded ${fmt(entries)})`);
  console.log(`RSS  ${fmt(empty.rss / 2 ** 20, 1)} MiB with none, ${fmt(full.rss / 2 ** 20, 1)} MiB with all: ${fmt(per(empty.rss, full.rss))} B/entry`);
  console.log(`heap ${fmt(empty.heap / 2 ** 20, 1)} MiB with none, ${fmt(full.heap / 2 ** 20, 1)} MiB with all: ${fmt(per(empty.heap, full.heap))} B/entry`);
}

/**
 * Plain writes of suspended_user:<prefix><n> at `perS` for `seconds`; `onWrite` after each reply.
 * SETEX rather than SET: the snapshot scripts call SET, so only SETEX's commandstats row is the
 * writer's alone.
 */
async function writeLoad(writer: Redis, prefix: string, perS: number, seconds: number, onWrite: (user: string, at: number) => void): Promise<number> {
  const t0 = Date.now();
  const interval = 1000 / perS;
  let written = 0;
  while (Date.now() < t0 + seconds * 1000) {
    const user = `${prefix}${written++}`;
    const at = now();
    await within(writer.setex(`suspended_user:${user}`, 600, 'true'), 10_000, `a write of the write load`);
    onWrite(user, at);
    const next = t0 + written * interval;
    if (next > Date.now()) await sleep(next - Date.now());
  }
  return written;
}

function setPerCall(a: Stats, b: Stats): { calls: number; usec: number } {
  const x = a.cmd.get('setex') ?? { calls: 0, usec: 0 };
  const y = b.cmd.get('setex') ?? { calls: 0, usec: 0 };
  return { calls: y.calls - x.calls, usec: (y.usec - x.usec) / Math.max(1, y.calls - x.calls) };
}

interface Running {
  redis?: RedisProcess;
  readonly kids: Set<ChildProcess>;
}

/** Gives redis-server the priority it would have on a host of its own (see the header). */
function prioritise(redis: RedisProcess, nice: number): string {
  if (nice === 0 || redis.pid === undefined) return 'at nice 0, sharing the cores with the fleet';
  try {
    setPriority(redis.pid, nice);
    return `at nice ${nice}`;
  } catch (err) {
    return `at nice 0: raising it to ${nice} failed (${(err as Error).message}), so Redis's figures include time it waited for a core`;
  }
}

async function main(run: Running): Promise<void> {
  const sidecars = arg('sidecars', 500);
  const entries = arg('entries', 100_000);
  const procs = Math.max(1, Math.min(arg('procs', 4), sidecars));
  const steadyS = arg('steady-s', 60);
  const writesPerS = arg('writes-per-s', 100);
  const writeS = arg('write-s', 30);
  const awayWrites = arg('away-writes', 100);
  const redisNice = arg('redis-nice', 0);
  const aloneCount = Math.max(0, Math.min(arg('alone', 4), sidecars - 1));
  const TARGET = 10_000;

  const redis: RedisProcess = await within(startRedis({
    extraArgs: ['--appendonly', 'yes', '--appendfsync', 'everysec', '--maxclients', '20000'],
  }), 30_000, 'redis-server to start');
  run.redis = redis;
  const priority = prioritise(redis, redisNice);
  const r = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  r.on('error', () => undefined);
  console.log(`# ${new Date().toISOString()} load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' ')} (2 vCPU, shared)`);
  console.log(`# state-scale: ${fmt(sidecars)} sidecars (${fmt(sidecars - aloneCount)} in ${procs} processes, ${aloneCount} alone in a process each), ${fmt(entries)} entries, redis-server ${(await r.info('server')).match(/redis_version:(\S+)/)?.[1]} on :${redis.port} ${priority}`);
  await within(seed(r, entries), 600_000, `seeding ${fmt(entries)} keys`);
  console.log(`seeded ${fmt(await r.dbsize())} keys`);

  // The cost of one snapshot build (shared by every sidecar that catches up after it started).
  const b0 = await stats(r);
  const conn = new Redis(redis.url);
  const t = Date.now();
  const built = await within(scanNode(conn, '', () => true), 300_000, 'one snapshot build');
  const buildMs = Date.now() - t;
  conn.disconnect();
  const build = delta(b0, await stats(r), SCRIPT_INNER);
  const snapBytes = built.pages.reduce((n, p) => n + p.length, 0);
  const packT = performance.now();
  const packedBytes = (await packSnapshot(built.pages, built.exact)).length;
  const packMs = performance.now() - packT;
  console.log(`\n## One snapshot build: ${fmt(build.usec)} µs of command time, ${fmt(build.cpu * 1e3)} ms Redis CPU, ${fmt(buildMs)} ms wall, ${fmt(snapBytes)} bytes (${fmt(snapBytes / entries, 1)} B/entry)`);
  console.log(`  published deflated: ${fmt(packedBytes)} bytes (${fmt(packedBytes / entries, 1)} B/entry, ${fmt(snapBytes / packedBytes, 1)}x), deflate ${fmt(packMs)} ms on the builder`);

  await memory(redis.url, entries, run.kids);
  if (process.argv.includes('--memory-only')) {
    r.disconnect();
    await redis.stop();
    run.redis = undefined;
    return;
  }

  // ---- the write load once with no fleet: what a SET costs Redis when nobody tracks the key
  const writer = new Redis(redis.url);
  writer.on('error', () => undefined);
  const nf0 = await stats(r);
  await writeLoad(writer, 'nf-', writesPerS, Math.min(writeS, 10), () => undefined);
  const setAlone = setPerCall(nf0, await stats(r));

  // ---- the fleet
  const kids: ChildProcess[] = [];
  const alone: ChildProcess[] = [];
  const grouped = sidecars - aloneCount;
  const per = Math.ceil(grouped / procs);
  const startT = Date.now();
  const s0 = await stats(r);
  const spawn = (n: number, real = false): ChildProcess => {
    const k = fork(SELF, ['--group', redis.url, String(n), real ? 'real' : 'probe'], { execArgv: ['--max-old-space-size=16384'] });
    kids.push(k);
    run.kids.add(k);
    k.once('exit', () => run.kids.delete(k));
    return k;
  };
  for (let i = 0; i < procs; i++) {
    const n = Math.min(per, grouped - i * per);
    if (n <= 0) break;
    spawn(n);
  }
  for (let i = 0; i < aloneCount; i++) alone.push(spawn(1, true));
  const coldMs = await waitSynced(kids, (s) => s.synced === sidecars, 900_000, 'the fleet to come in sync (cold start)');
  const cold = delta(s0, await stats(r), SCRIPT_INNER);
  const coldStatus = await allSynced(kids);
  const coldBuilt = coldStatus.built;
  console.log(`\n## Cold start: all ${fmt(sidecars)} in sync after ${fmt((Date.now() - startT) / 1000, 1)} s (${fmt(coldMs / 1000, 1)} s after the first status); ${coldBuilt} of them built a snapshot, the others read a shared one; command time ${fmt(cold.usec / sidecars)} µs/sidecar, Redis CPU ${fmt((cold.cpu * 1e6) / sidecars)} µs/sidecar`);

  console.log(`  builds by reason: ${tallySince(coldStatus.buildReasons)}; keepers stopped: ${tallySince(coldStatus.keeperStops)}`);

  const clients = ((await r.call('CLIENT', 'LIST')) as string).split('\n').filter((l) => l.includes('name=zt-authz'));
  console.log(`connections: ${fmt(clients.length)} for ${fmt(sidecars)} sidecars = ${fmt(clients.length / sidecars, 2)} per sidecar`);

  // ---- quiet steady state
  await sleep(3000);
  const q0 = await stats(r);
  const qt = Date.now();
  await sleep(steadyS * 1000);
  const q = delta(q0, await stats(r), new Set());
  const qMin = (Date.now() - qt) / 60_000;
  const quietPer = q.usec / sidecars / qMin;
  console.log(`\n## Quiet steady state (${steadyS} s): ${fmt(quietPer)} µs of command time per sidecar per minute; Redis CPU ${fmt((q.cpu * 1e6) / sidecars / qMin)} µs/sidecar/min`);
  console.log(`  by command: ${q.by.map(([n, c, u]) => `${n} ${fmt(c)} calls ${fmt(u)} µs`).join('; ')}`);

  // ---- write load: plain writes by another client, propagation to every sidecar
  await request(kids, 'prop');
  const resyncsBefore = (await allSynced(kids)).resyncs;
  const w0 = await stats(r);
  const wt = Date.now();
  const written = await writeLoad(writer, 'w-', writesPerS, writeS, (user, at) => {
    for (const k of kids) k.send({ t: 'expect', user, at });
  });
  const writeSecs = (Date.now() - wt) / 1000;
  await sleep(2000);
  const w1 = await stats(r);
  const wd = delta(w0, w1, new Set(['setex']));
  // A sidecar that fell out of sync under the load resyncs: its snapshot work lands in this window.
  // (Counted by the sidecars: EVALSHA calls include the snapshot keeper's, about one a second.)
  const resyncsDuringWrites = (await allSynced(kids)).resyncs - resyncsBefore;
  const wMin = (Date.now() - wt) / 60_000;
  const setFleet = setPerCall(w0, w1);
  const fanoutPerWrite = setFleet.usec - setAlone.usec;
  const quietCpuPerMin = q.cpu / qMin;
  const cpuPerWrite = ((wd.cpu - quietCpuPerMin * wMin) * 1e6) / written;
  const reports = await request(kids, 'prop');
  const props = reports.flatMap((p) => p.samples).sort((a, b) => a - b);
  const aloneProps = reports.filter((_, i) => alone.includes(kids[i]!)).flatMap((p) => p.samples).sort((a, b) => a - b);
  const missing = (await request(kids, 'prop')).reduce((n, p) => n + p.missing, 0);
  writer.disconnect();
  const perWritePerSidecar = wd.usec / (written * sidecars);
  console.log(`\n## Write load: ${fmt(written)} plain SETEXs at ${writesPerS}/s (${fmt(written / writeSecs, 1)}/s achieved): ${fmt(wd.usec / sidecars / wMin)} µs of sidecar command time per sidecar per minute (${fmt(perWritePerSidecar, 2)} µs per write per sidecar); Redis CPU ${fmt((wd.cpu * 1e6) / sidecars / wMin)} µs/sidecar/min`);
  const spread = (xs: number[]) => `n=${fmt(xs.length)} p50=${fmt(pct(xs, 50), 1)} ms p99=${fmt(pct(xs, 99), 1)} ms max=${fmt(xs[xs.length - 1] ?? NaN, 1)} ms`;
  console.log(`  write -> enforced on every sidecar: ${spread(props)}; not seen within 10 s: ${missing}`);
  if (aloneProps.length > 0) console.log(`  of which the ${aloneCount} sidecars alone in a process each, as in a pod: ${spread(aloneProps)}`);
  console.log(`  by command: ${wd.by.map(([n, c, u]) => `${n} ${fmt(c)} calls ${fmt(u)} µs`).join('; ')}`);
  if (resyncsDuringWrites > 0) console.log(`  NOTE: ${fmt(resyncsDuringWrites)} resyncs during the write load (sidecars fell out of sync): the per-write figures include that work`);
  console.log(`  invalidation fan-out (charged to the writer): SETEX ${fmt(setFleet.usec, 2)} µs/call with the fleet (n=${fmt(setFleet.calls)}) - ${fmt(setAlone.usec, 2)} µs/call with none (n=${fmt(setAlone.calls)}) = ${fmt(fanoutPerWrite, 2)} µs per write (${fmt(fanoutPerWrite / sidecars, 3)} µs per write per sidecar)`);
  console.log(`  Redis CPU per write beyond the quiet steady state: ${fmt(cpuPerWrite)} µs (${fmt(cpuPerWrite / sidecars, 2)} µs per write per sidecar; sidecar re-reads + fan-out + the SET)`);

  // ---- restart storm: graceful stop (AOF flushed), same port, data survives
  // The meta the AOF brings back: the storm's first publish is the first meta after the restart
  // that differs from it (read now, since a small snapshot can be published before Redis says
  // it has finished loading).
  const metaBefore = await r.get(snapshotKeys('').meta);
  r.disconnect();
  await within(redis.kill('SIGTERM'), 60_000, 'redis-server to stop (SIGTERM)');
  await waitSynced(kids, (s) => s.synced === 0, 60_000, 'every sidecar to notice Redis is gone');
  const downAt = Date.now();
  await request(kids, 'loop');
  // Writes no sidecar saw happen (another Redis on the same data while this one is down): the
  // buckets they land in are what an incremental catch-up reads.
  if (awayWrites > 0) await within(redis.offline((cli) => cli('EVAL', AWAY_WRITES, '0', String(awayWrites)).then(() => undefined)), 120_000, 'the writes made while the fleet was away');
  await within(redis.restart(), 120_000, 'redis-server to restart');
  prioritise(redis, redisNice);
  const upAt = Date.now();
  const r2 = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  r2.on('error', () => undefined);
  const loadedBy = Date.now() + 300_000;
  while (((await r2.info('persistence')).match(/loading:(\d)/)?.[1] ?? '1') !== '0') {
    if (Date.now() > loadedBy) throw new Error('timed out after 300 s waiting for redis-server to load its AOF');
    await sleep(20);
  }
  const rs0 = await stats(r2);
  const stormMilestones: number[] = [];
  // When the storm's first snapshot was published, from when Redis accepted connections: what the
  // fleet waited for before any could read (at most one 50 ms poll late).
  let publishedMs = NaN;
  let stormDone = false;
  const watchPublish = (async () => {
    while (!stormDone) {
      const m = await r2.get(snapshotKeys('').meta).catch(() => metaBefore);
      if (m !== null && m !== metaBefore) return void (publishedMs = Date.now() - upAt);
      await sleep(50);
    }
  })();
  const stormAlone: { kids: ChildProcess[]; ms?: number } = { kids: alone };
  // Every storm time counts from when Redis accepted connections, as the publish's does: the
  // wait for the AOF to load (seconds at a million keys) is part of what the fleet waits for.
  const loadMs = Date.now() - upAt;
  const stormMs = loadMs + (await waitSynced(kids, (s) => s.synced === sidecars, 900_000, 'the fleet to come back in sync (restart storm)', stormMilestones, stormAlone).finally(() => (stormDone = true)));
  stormMilestones.forEach((ms, i) => (stormMilestones[i] = ms + loadMs));
  if (stormAlone.ms !== undefined) stormAlone.ms += loadMs;
  await watchPublish;
  const storm = delta(rs0, await stats(r2), SCRIPT_INNER);
  const stormPer = storm.usec / sidecars;
  const stormStatus = await allSynced(kids);
  const stormLoop = await request(kids, 'loop');
  const aloneLoop = stormLoop.filter((_, i) => alone.includes(kids[i] as ChildProcess));
  const groupCpu = stormLoop.filter((_, i) => !alone.includes(kids[i] as ChildProcess)).map((l) => l.cpuMs / 1000);
  const builds = stormStatus.built;
  console.log(`\n## Restart storm: redis-server down ${fmt((upAt - downAt) / 1000, 1)} s; all ${fmt(sidecars)} back in sync ${fmt(stormMs / 1000, 1)} s after it accepted connections (its AOF loaded after ${fmt(loadMs / 1000, 1)} s)`);
  console.log(`  first snapshot published after ${fmt(publishedMs / 1000, 1)} s; in sync after: ${MILESTONES.map((m, i) => `${m * 100} % ${fmt((stormMilestones[i] ?? NaN) / 1000, 1)} s`).join(', ')}, all ${fmt(stormMs / 1000, 1)} s; the ${alone.length} sidecars alone in a process each, as in a pod: ${fmt((stormAlone.ms ?? NaN) / 1000, 1)} s`);
  // A catch-up's decode and apply run in one synchronous step: a request arriving then waits for it.
  if (aloneLoop.length > 0) console.log(`  the ${alone.length} alone hold the product's mirror of every entry; their event loop's delay from the outage to back in sync: p99 ${aloneLoop.map((l) => fmt(l.p99, 1)).join(', ')} ms; max ${aloneLoop.map((l) => fmt(l.max, 1)).join(', ')} ms; CPU ${aloneLoop.map((l) => fmt(l.cpuMs / 1000, 2)).join(', ')} s`);
  // What the simulated fleet's own processes spent meanwhile, against the two cores' capacity.
  console.log(`  CPU of the ${groupCpu.length} fleet processes from the outage to back in sync: ${groupCpu.map((c) => fmt(c, 1)).join(', ')} s (${fmt(groupCpu.reduce((a, b) => a + b, 0), 1)} s in all; Redis ${fmt(storm.cpu, 1)} s once its AOF was loaded)`);
  console.log(`  resyncs per sidecar since the cold start: ${fmt((stormStatus.resyncs - coldStatus.resyncs) / sidecars, 2)} completed, ${fmt((stormStatus.failed - coldStatus.failed) / sidecars, 2)} failed and retried`);
  const readers = Math.max(1, sidecars - builds);
  const bytesPerReader = stormStatus.bytesRead / readers;
  console.log(`  ${fmt(awayWrites)} writes made while the fleet was away; ${fmt(stormStatus.incremental)} sidecars caught up incrementally (only the changed buckets), ${fmt(sidecars - builds - stormStatus.incremental)} read the whole snapshot, ${builds} built one; ${fmt(stormStatus.logged)} took a snapshot begun before their resync with its keeper's log (${fmt(stormStatus.logKeys / Math.max(1, stormStatus.logged), 1)} logged keys re-read each)`);
  console.log(`  ${builds} snapshot builds; catch-up command time ${fmt(stormPer)} µs/sidecar (builds included), Redis CPU ${fmt((storm.cpu * 1e6) / sidecars)} µs/sidecar; snapshot bytes read ${fmt(bytesPerReader)} per reading sidecar (whole: ${fmt(packedBytes)})`);
  console.log(`  builds by reason: ${tallySince(stormStatus.buildReasons, coldStatus.buildReasons)}; keepers stopped since the cold start: ${tallySince(stormStatus.keeperStops, coldStatus.keeperStops)}`);
  console.log(`  by command: ${storm.by.map(([n, c, u]) => `${n} ${fmt(c)} calls ${fmt(u)} µs`).join('; ')}`);

  // ---- pod starts: one sidecar at a time joins the fleet in sync, as in a rolling deploy
  const podMs: number[] = [];
  let podBuilt = 0;
  let podLogged = 0;
  const podReasons: Tally[] = [];
  const p0 = await stats(r2);
  const pt = Date.now();
  for (let i = 0; i < PODS; i++) {
    // Written before the pod exists, so the keeper's log has something to carry to it.
    await r2.set(`suspended_user:pod-${i}`, 'true', 'EX', 3600);
    const t = Date.now();
    const k = spawn(1);
    await waitSynced([k], (st) => st.synced === 1, 300_000, 'a starting pod to come in sync');
    podMs.push(Date.now() - t);
    const st = await allSynced([k]);
    podBuilt += st.built;
    podLogged += st.logged;
    podReasons.push(st.buildReasons);
  }
  const pods = delta(p0, await stats(r2), SCRIPT_INNER);
  // The fleet's heartbeats run meanwhile: their quiet-state rate is taken off.
  const podUsec = Math.max(0, pods.usec - quietPer * sidecars * ((Date.now() - pt) / 60_000)) / PODS;
  console.log(`\n## Pod starts: ${PODS} sidecars started one after another into the fleet in sync, each after one write`);
  console.log(`  in sync ${podMs.map((ms) => `${fmt(ms / 1000, 1)} s`).join(', ')} after the process was forked; ${podBuilt} built a snapshot (${tallySince(addTallies(podReasons))}), ${podLogged} took the published one with its keeper's log; ${fmt(podUsec)} µs of Redis command time per start beyond the fleet's heartbeats (one build: ${fmt(build.usec)} µs)`);

  // ---- extrapolation
  const getrange = storm.by.find(([n]) => n === 'getrange')?.[2] ?? 0;
  // The build measured alone can cost more than its part of the storm's command time (Redis was
  // less contended then), which would leave nothing for the reads: what the storm spent outside
  // scripts (reads, tracking setup, heartbeats) is then the floor.
  const outsideScripts = storm.by.filter(([n]) => n !== 'evalsha' && n !== 'eval').reduce((t, [, , u]) => t + u, 0);
  const readPer = Math.max(storm.usec - builds * build.usec, outsideScripts) / sidecars;
  const stormAtTarget = build.usec * builds + readPer * TARGET;
  console.log(`\n## Extrapolation to ${fmt(TARGET)} sidecars (model: each sidecar's own commands scale with the fleet, the snapshot build does not)`);
  console.log(`  steady state: ${fmt(quietPer)} µs/sidecar/min x ${fmt(TARGET)} = ${fmt((quietPer * TARGET) / 60e6 * 100, 2)} % of one Redis core`);
  const writePer = perWritePerSidecar + Math.max(0, fanoutPerWrite) / sidecars;
  console.log(`  write load: (${fmt(perWritePerSidecar, 2)} µs sidecar re-reads + ${fmt(Math.max(0, fanoutPerWrite) / sidecars, 3)} µs fan-out) per write per sidecar x ${fmt(TARGET)} x ${writesPerS}/s = ${fmt((writePer * TARGET * writesPerS) / 1e6 * 100, 1)} % of one core (by Redis CPU per write: ${fmt(((cpuPerWrite / sidecars) * TARGET * writesPerS) / 1e6 * 100, 1)} %)`);
  console.log(`  catch-up: ${builds} builds as measured (${fmt(build.usec)} µs each; the count depends on how the reconnects spread, not on the fleet size) + ${fmt(TARGET)} x ${fmt(readPer)} µs (snapshot read incl. ${fmt(getrange / sidecars)} µs GETRANGE, polls, tracking setup) = ${fmt(stormAtTarget / 1e6, 2)} s of Redis time, ${fmt(stormAtTarget / TARGET)} µs/sidecar`);
  console.log(`  catch-up transfer: ${fmt(TARGET)} x ${fmt(bytesPerReader / 2 ** 10, 1)} KiB read per sidecar as measured = ${fmt((TARGET * bytesPerReader) / 2 ** 20, 1)} MiB, ${fmt((TARGET * bytesPerReader * 8) / 10e9, 2)} s at 10 Gbit/s from one Redis (a fleet reading the whole snapshot: ${fmt((TARGET * packedBytes) / 2 ** 30, 1)} GiB, ${fmt((TARGET * packedBytes * 8) / 10e9, 1)} s)`);
  console.log(`  connections: ${fmt(clients.length / sidecars, 2)} x ${fmt(TARGET)} = ${fmt((clients.length / sidecars) * TARGET)}`);

  for (const k of kids) k.send({ t: 'quit' });
  await within(Promise.all(kids.map((k) => new Promise((res) => (k.exitCode !== null ? res(null) : k.once('exit', res))))), 60_000, 'the sidecar groups to close');
  r2.disconnect();
  await redis.stop();
  run.redis = undefined;
}

/** On any failure or signal: no child and no redis-server outlives the bench. */
async function cleanUp(run: Running): Promise<void> {
  for (const k of run.kids) k.kill('SIGKILL');
  await run.redis?.kill('SIGKILL').catch(() => undefined);
}


const mode = process.argv[2];
if (mode === '--group') void sidecarGroup(process.argv[3]!, Number(process.argv[4]), process.argv[5] === 'real');
else if (mode === '--mem') void memoryProbe(process.argv[3]!, process.argv[4] ?? '');
else {
  const run: Running = { kids: new Set() };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`state-scale: ${sig}, stopping`);
      void cleanUp(run).finally(() => process.exit(1));
    });
  }
  main(run).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      void cleanUp(run).finally(() => process.exit(1));
    },
  );
}
