/**
 * In-process cost curves for the scaling scenario: one decision (`checkWire` on a decoded
 * CheckRequest, as the gRPC handler calls it) against the number of routes, blocked CIDRs (IPv4,
 * IPv6) and issuers, plus the heap each holds. Every point of a curve is its own App, built before
 * timing starts; the rounds then interleave the points, so drift on a shared machine hits them all
 * alike, and each point is the median of its rounds.
 * Usage: node --expose-gc scaling-child.js JSON(ScalingArgs)   (prints READY_PREFIX + ScalingResult)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from '../../src/app.js';
import { validate } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema/index.js';
import { policySchema } from '../../src/config/schema/policy.js';
import { DEV_AUDIENCE, DEV_PUBLIC_JWKS } from '../../src/dev/keys.js';
import { createLogger } from '../../src/observability/logger.js';
import { compilePolicy } from '../../src/policy/index.js';
import { RouteIndex } from '../../src/policy/route-index.js';
import type { RouteSpec } from '../../src/policy/routes.js';
import { decodeCheckRequest } from '../../src/wire/decode.js';
import { WantedHeaders } from '../../src/wire/wanted-headers.js';
import { linearMatcher } from '../../test/policy/linear-routes.js';
import { benchConfig } from './config.js';
import { parseMetrics } from './metrics.js';
import { READY_PREFIX } from './proc.js';
import { benchRequest } from './requests.js';
import { median } from './stats.js';
import { mintToken, userClaims } from './tokens.js';
import type { Curve, CurvePoint } from './types.js';
import { grpcFrame } from './wire.js';

export interface ScalingArgs {
  readonly routes: readonly number[];
  readonly cidrs: readonly number[];
  readonly issuers: readonly number[];
  readonly rounds: number;
  /** Time per point per round. */
  readonly roundMs: number;
  readonly workDir: string;
}

export interface ScalingResult {
  readonly curves: Curve[];
  readonly node: string;
  /** Every call made to the servers (all should be allowed), and what their metrics counted. */
  readonly calls: number;
  readonly counted: Record<string, number>;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ScalingArgs;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc: the memory figures need a full GC');
const logger = createLogger('error');
const REQ_HOST = 'orders.prod.svc.cluster.local';

/** Heap held by what `build` returns: used heap after a full GC, with and without it. */
async function heldBytes<T>(build: () => T | Promise<T>): Promise<{ value: T; bytes: number }> {
  gc!();
  gc!();
  const before = process.memoryUsage().heapUsed;
  const value = await build();
  gc!();
  gc!();
  return { value, bytes: process.memoryUsage().heapUsed - before };
}

/**
 * N routes of the shapes a shared gateway has: prefix, exact and pattern, hosts exact (the
 * request's own and others) and `*.suffix` (one that covers the request host), methods mixed;
 * all under /api, so they share the trie's top node with the request. The route the bench
 * request needs is last in config order: a linear scan would try every other one first.
 */
function routeTable(n: number): NonNullable<ConfigInput['policy']>['routes'] {
  const routes: Record<string, unknown>[] = [];
  for (let i = 0; i < n - 1; i++) {
    const base = `/api/s${i}`;
    const shape = i % 3 === 0 ? { prefix: base } : i % 3 === 1 ? { path: `${base}/items` } : { pattern: `${base}/*/items/**` };
    const host = i % 4 === 0 ? REQ_HOST : i % 4 === 1 ? '*.svc.cluster.local' : i % 4 === 2 ? `h${i}.example.com` : undefined;
    const methods = i % 3 === 0 ? ['POST'] : i % 5 === 1 ? ['GET', 'PUT'] : undefined;
    routes.push({ ...shape, ...(host ? { host } : {}), ...(methods ? { methods } : {}), resource: 'public' });
  }
  // Same path as the match, other methods: the candidate list of the matching node is not trivial.
  routes.splice(Math.floor(routes.length / 2), 0, { prefix: '/api/orders', methods: ['DELETE'], resource: 'admin' });
  routes.push({ prefix: '/api/orders', resource: 'orders' });
  return routes as never;
}

function configWith(mutate: (c: Record<string, any>) => void): Extract<ReturnType<typeof validate>, { ok: true }> {
  const c = benchConfig({ decisionLog: 'none' }) as Record<string, any>;
  c.server.http.address = '';
  mutate(c);
  const loaded = validate(c as ConfigInput, 'bench', false);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return loaded;
}

async function startApp(loaded: Extract<ReturnType<typeof validate>, { ok: true }>): Promise<App> {
  const app = await App.start(loaded, { logger });
  const until = Date.now() + 30_000;
  while (!app.ready()) {
    if (Date.now() > until) throw new Error('app not ready within 30 s');
    await new Promise((r) => setTimeout(r, 10));
  }
  return app;
}

interface Timed {
  readonly x: number;
  readonly fn: () => unknown;
  readonly samples: number[];
  extra: Record<string, number>;
}

/** Calls made through checkFn, to compare with the decisions the servers counted. */
let checkCalls = 0;

function checkFn(app: App, body: Buffer): () => unknown {
  const msg = decodeCheckRequest(body, WantedHeaders.of(app.config));
  const d = app.pipeline.decideWire(msg, Number.POSITIVE_INFINITY);
  if (d instanceof Promise || !d.allow) throw new Error(`the bench request is not a synchronous allow: ${JSON.stringify(d instanceof Promise ? 'async' : d.reason)}`);
  checkCalls++;
  const fn = () => app.pipeline.decideWire(msg, Number.POSITIVE_INFINITY);
  checkFns.add(fn);
  return fn;
}

const checkFns = new Set<() => unknown>();
let sink: unknown;
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
/**
 * µs of this process's CPU time per call over about `ms` milliseconds of it. CPU time, not wall
 * time: on a shared machine the wall clock also counts the time other processes held the core.
 */
function timeFor(fn: () => unknown, ms: number): number {
  let calls = 0;
  let batch = 16;
  const start = cpuUs();
  const until = start + ms * 1000;
  let now = start;
  while (now < until) {
    for (let i = 0; i < batch; i++) sink = fn();
    calls += batch;
    if (batch < 4096) batch *= 2;
    now = cpuUs();
  }
  if (checkFns.has(fn)) checkCalls += calls;
  return (now - start) / calls;
}

function runRounds(all: Timed[][]): void {
  const flat = all.flat();
  for (const t of flat) timeFor(t.fn, args.roundMs / 2); // warm-up: JIT and inline caches
  for (let r = 0; r < args.rounds; r++) {
    // Alternate the order so no point always runs right after the heaviest one.
    const order = r % 2 === 0 ? flat : [...flat].reverse();
    for (const t of order) t.samples.push(timeFor(t.fn, args.roundMs));
  }
}

function curve(name: string, title: string, xLabel: string, entryLabel: string, timed: Timed[], memory: Map<number, number>): Curve {
  const points: CurvePoint[] = timed.map((t) => ({
    x: t.x,
    us: median(t.samples),
    range: [Math.min(...t.samples), Math.max(...t.samples)],
    heapBytes: memory.get(t.x) ?? Number.NaN,
    extra: t.extra,
  }));
  return { name, title, xLabel, entryLabel, points };
}

const curves: Curve[] = [];
const apps: App[] = [];
const bodyFor = (spec: Parameters<typeof benchRequest>[0]) => grpcFrame(benchRequest(spec)).subarray(5);
const token = mintToken('RS256', userClaims('alice'));

// Routes: the decision, the route match alone (index and the linear scan it replaced), compile time and heap.
const routeTimed: Timed[] = [];
const routeMemory = new Map<number, number>();
const routeMatchTimed: Timed[] = [];
const linearTimed: Timed[] = [];
for (const n of args.routes) {
  const loaded = configWith((c) => (c.policy.routes = routeTable(n)));
  const rawPolicy = (benchConfig({ decisionLog: 'none' }) as Record<string, any>).policy;
  rawPolicy.routes = routeTable(n);
  // Reload cost: schema validation of the policy section plus compiling it, the median of 5.
  const validateMs: number[] = [];
  const compileMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    let t = performance.now();
    const parsed = policySchema.parse(rawPolicy);
    validateMs.push(performance.now() - t);
    t = performance.now();
    compilePolicy(parsed);
    compileMs.push(performance.now() - t);
  }
  const parsed = policySchema.parse(rawPolicy);
  const { bytes } = await heldBytes(() => compilePolicy(parsed));
  routeMemory.set(n, bytes);
  const app = await startApp(loaded);
  apps.push(app);
  routeTimed.push({ x: n, fn: checkFn(app, bodyFor({ token })), samples: [], extra: { validateMs: median(validateMs), compileMs: median(compileMs) } });
  const specs = parsed.routes as readonly RouteSpec[];
  const index = new RouteIndex(specs);
  const linear = linearMatcher(specs);
  const req = { method: 'GET', path: '/api/orders', rawPath: '/api/orders', query: '', host: REQ_HOST, scheme: 'http', headers: {}, clientIp: '', clientIpSource: 'peer' as const, principal: '', contextExtensions: {}, requestId: '' };
  if (index.match(req) !== specs[specs.length - 1] || linear(req) !== specs[specs.length - 1]) throw new Error('route table: the bench request must match the last route');
  routeMatchTimed.push({ x: n, fn: () => index.match(req), samples: [], extra: {} });
  linearTimed.push({ x: n, fn: () => linear(req), samples: [], extra: {} });
}

// Blocked CIDRs: prefix lengths spread as on real lists, none covering the client, so every
// lookup tries every prefix length in use (the worst case for a miss; a hit stops earlier).
function v4Cidr(i: number): string {
  const len = 16 + (i % 17);
  const a = 11 + (i % 100); // 11.x - 110.x: never 203.0.113.0/24
  const ip = ((a << 24) | ((i * 2654435761) & 0xffffff)) >>> 0;
  const masked = len === 32 ? ip : (ip & ~((1 << (32 - len)) - 1)) >>> 0;
  return `${masked >>> 24}.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.${masked & 255}/${len}`;
}
const V6_LENGTHS = [32, 40, 48, 56, 64, 96, 112, 128];
function v6Cidr(i: number): string {
  const len = V6_LENGTHS[i % V6_LENGTHS.length]!;
  const words = [0x2a00 + (i % 256), (i >>> 8) & 0xffff, (i * 40503) & 0xffff, (i * 9973) & 0xffff, i & 0xffff, 1, 2, (i * 7) & 0xffff];
  // Zero the bits past the prefix so the entry is a network address.
  for (let w = 0; w < 8; w++) {
    const keep = Math.max(0, Math.min(16, len - w * 16));
    words[w] = keep === 0 ? 0 : words[w]! & ((0xffff << (16 - keep)) & 0xffff);
  }
  return `${words.map((x) => x.toString(16)).join(':')}/${len}`;
}
const cidrTimed: Record<'v4' | 'v6', Timed[]> = { v4: [], v6: [] };
const cidrMemory: Record<'v4' | 'v6', Map<number, number>> = { v4: new Map(), v6: new Map() };
for (const v of ['v4', 'v6'] as const) {
  for (const n of args.cidrs) {
    const app = await startApp(configWith(() => undefined));
    apps.push(app);
    const { bytes } = await heldBytes(async () => {
      for (let i = 0; i < n; i++) await app.state.blockIp(v === 'v4' ? v4Cidr(i) : v6Cidr(i), 86_400);
      return undefined;
    });
    const sourceIp = v === 'v4' ? '203.0.113.7' : '2001:db8::7';
    const fn = checkFn(app, bodyFor({ token, sourceIp }));
    // The first lookup builds the index from the loaded list; count it with the entries.
    cidrMemory[v].set(
      n,
      bytes +
        (await heldBytes(() => {
          checkCalls++;
          return fn();
        })).bytes,
    );
    cidrTimed[v].push({ x: n, fn, samples: [], extra: {} });
  }
}

// Issuers: N configured (same public keys, distinct iss), the token from the last one. Cached
// decisions, and every call verifying (token cache off: max_age_s 0).
const jwksFile = join(args.workDir, 'scaling-jwks.json');
writeFileSync(jwksFile, JSON.stringify(DEV_PUBLIC_JWKS));
const issuerName = (i: number) => `https://issuer-${i}.example.com`;
const issuerTimed: Timed[] = [];
const verifyTimed: Timed[] = [];
const issuerMemory = new Map<number, number>();
for (const n of args.issuers) {
  const identity = (cacheAge: number) => ({
    issuers: Array.from({ length: n }, (_, i) => ({ issuer: issuerName(i), audiences: [DEV_AUDIENCE], algorithms: ['RS256', 'ES256'], keys: { jwks_file: jwksFile, refresh_interval_s: 0, max_stale_s: 0 } })),
    token_cache: { max_age_s: cacheAge },
  });
  const issuerToken = mintToken('RS256', userClaims('alice'), { iss: issuerName(n - 1) });
  const { value: app, bytes } = await heldBytes(() => startApp(configWith((c) => (c.identity = identity(300)))));
  issuerMemory.set(n, bytes);
  const verifying = await startApp(configWith((c) => (c.identity = identity(0))));
  apps.push(app, verifying);
  issuerTimed.push({ x: n, fn: checkFn(app, bodyFor({ token: issuerToken })), samples: [], extra: {} });
  verifyTimed.push({ x: n, fn: checkFn(verifying, bodyFor({ token: issuerToken })), samples: [], extra: {} });
}

runRounds([routeTimed, routeMatchTimed, linearTimed, cidrTimed.v4, cidrTimed.v6, issuerTimed]);
// Verifying calls cost ~20x a cached one: their own rounds, so they do not dominate the others' time.
runRounds([verifyTimed]);

const routeCurve = curve('routes', 'Decision cost against route count', 'routes', 'route', routeTimed, routeMemory);
routeCurve.points.forEach((p, i) => {
  p.extra['matchUs'] = median(routeMatchTimed[i]!.samples);
  p.extra['linearMatchUs'] = median(linearTimed[i]!.samples);
});
curves.push(
  routeCurve,
  curve('cidrs-v4', 'Decision cost against blocked IPv4 CIDRs', 'blocked CIDRs (IPv4)', 'CIDR', cidrTimed.v4, cidrMemory.v4),
  curve('cidrs-v6', 'Decision cost against blocked IPv6 CIDRs', 'blocked CIDRs (IPv6)', 'CIDR', cidrTimed.v6, cidrMemory.v6),
  curve('issuers', 'Decision cost against issuer count (cached token)', 'issuers', 'issuer', issuerTimed, issuerMemory),
  curve('issuers-verify', 'Decision cost against issuer count, every call verifying RS256', 'issuers', 'issuer', verifyTimed, issuerMemory),
);
void sink;
const counted: Record<string, number> = {};
for (const app of apps) {
  for (const [reason, n] of parseMetrics(await app.metrics.registry.metrics()).decisions) counted[reason] = (counted[reason] ?? 0) + n;
  await app.shutdown(100);
}
process.stdout.write(`${READY_PREFIX}${JSON.stringify({ curves, node: process.version, calls: checkCalls, counted } satisfies ScalingResult)}\n`);
process.exit(0);
