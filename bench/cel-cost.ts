/**
 * Per-call cost of a compiled `when` condition, in process: each cookbook expression alone
 * (ns per evaluation, on the activation the policy refills in place), then the whole policy
 * evaluate with 0, 1, 2, 4 and 8 conditions (how the cost grows with the work), with bytes
 * allocated per call. The same two conditions through @bufbuild/cel for the library choice.
 * Prints figures; asserts nothing.
 *   npm run build && taskset -c 1 node --expose-gc dist/bench/cel-cost.js [rounds] [calls]
 */
import { celEnv, CelScalar, mapType, parse, plan } from '@bufbuild/cel';
import { getHeapStatistics } from 'node:v8';
import { policySchema } from '../src/config/schema/policy.js';
import type { Identity, NormalizedRequest } from '../src/model.js';
import { compileCondition, newActivation, ResourceVars } from '../src/policy/cel.js';
import { compilePolicy } from '../src/policy/index.js';
import type { StateView } from '../src/state/types.js';
import { median } from './lib/stats.js';

const ROUNDS = Number(process.argv[2] ?? 7);
const CALLS = Number(process.argv[3] ?? 500_000);
const gc = (globalThis as { gc?: () => void }).gc;

const headers = { 'x-tenant': 'acme', authorization: 'Bearer x' };
const req: NormalizedRequest = {
  method: 'GET',
  path: '/api/orders',
  rawPath: '/api/orders',
  query: '',
  host: 'shop.example.com',
  scheme: 'https',
  headers,
  clientIp: '10.1.2.3',
  clientIpSource: 'peer',
  principal: '',
  contextExtensions: {},
  requestId: 'r',
};
const identity: Identity = Object.freeze({
  issuer: 'https://idp.example',
  sub: 'alice',
  claims: Object.freeze({ sub: 'alice', tenant: 'acme', roles: ['shop-user'] }),
  roles: Object.freeze(['shop-user']),
  scopes: Object.freeze(['openid', 'orders:read']),
  exp: 4_102_444_800,
});
const nowMs = Date.parse('2030-03-13T10:00:00Z');

const COOKBOOK: Record<string, string> = {
  tenant: 'request.headers["x-tenant"] == claims.tenant',
  'method-role': 'request.method != "DELETE" || "orders-admin" in identity.roles',
  'time-of-day': 'local_hour(now, "Europe/Berlin") >= 8 && local_hour(now, "Europe/Berlin") < 18',
  cidr: 'ip_in(request.ip, "10.0.0.0/8")',
};

function time(fn: () => unknown, calls = CALLS): { ns: number; bytes: number } {
  for (let i = 0; i < Math.min(50_000, calls); i++) fn();
  const ns: number[] = [];
  const bytes: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    gc?.();
    const h0 = getHeapStatistics().used_heap_size;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) fn();
    const t1 = process.hrtime.bigint();
    const h1 = getHeapStatistics().used_heap_size;
    ns.push(Number(t1 - t0) / calls);
    bytes.push(Math.max(0, h1 - h0) / calls);
  }
  return { ns: median(ns), bytes: median(bytes) };
}

const row = (label: string, r: { ns: number; bytes: number }, extra = '') =>
  console.log(`${label.padEnd(44)} ${r.ns.toFixed(0).padStart(6)} ns/call ${gc ? `${r.bytes.toFixed(0).padStart(5)} B/call` : ''} ${extra}`);

console.log(`cel-cost: ${ROUNDS} rounds x ${CALLS} calls, median; Node ${process.version}${gc ? '' : ' (run with --expose-gc for bytes)'}`);
console.log('\none compiled condition (@marcbachmann/cel-js), activation refilled in place:');
const a = newActivation();
Object.assign(a.request, { method: req.method, path: req.path, host: req.host, headers, ip: req.clientIp });
a.claims = identity.claims;
Object.assign(a.identity, { sub: identity.sub, roles: identity.roles, scopes: identity.scopes, issuer: identity.issuer });
a.resource = new ResourceVars('orders', 'orders', 'low', 'public');
a.now.setTime(nowMs);
for (const [name, src] of Object.entries(COOKBOOK)) {
  const c = compileCondition(src, name);
  if (c.run(a) !== true) throw new Error(`${name} is not true on the bench request`);
  row(`  ${name}`, time(() => c.run(a)), `(estimated cost ${c.cost})`);
}

// The library's own zone-aware selector formats through Intl per call: far fewer calls.
const libTz = compileCondition('now.getHours("Europe/Berlin") >= 8 && now.getHours("Europe/Berlin") < 18', 'getHours');
row('  time-of-day, library getHours(zone)', time(() => libTz.run(a), Math.max(1, Math.floor(CALLS / 500))));

console.log('\nthe same two conditions through @bufbuild/cel (plan once, plain-object bindings):');
const S = CelScalar;
const env = celEnv({ variables: { request: mapType(S.STRING, S.DYN), claims: mapType(S.STRING, S.DYN), identity: mapType(S.STRING, S.DYN) } });
const bindings = { request: { method: req.method, headers }, claims: identity.claims, identity: { roles: identity.roles } };
for (const name of ['tenant', 'method-role']) {
  const f = plan(env, parse(COOKBOOK[name]!)) as (b: unknown) => unknown;
  if (f(bindings) !== true) throw new Error(`bufbuild: ${name} is not true`);
  row(`  ${name}`, time(() => f(bindings)));
}

console.log('\nPolicy.evaluate (whole policy, cached identity) with n conditions on the route:');
const state: StateView = { userSuspended: () => 'clear', ipBlocked: () => 'clear', liveRisk: () => undefined, recordAuthFailure() {} };
const conds = [COOKBOOK['tenant']!, COOKBOOK['method-role']!, COOKBOOK['cidr']!, 'request.path.startsWith("/api/")'];
let base = 0;
for (const n of [0, 1, 2, 4, 8]) {
  const when = Array.from({ length: n }, (_, i) => conds[i % conds.length]!);
  const policy = compilePolicy(
    policySchema.parse({
      allowed_resources_claim: null,
      resources: { orders: {} },
      routes: [{ prefix: '/api/orders', resource: 'orders', require: { roles_any: ['shop-user'], scopes_all: ['orders:read'] }, ...(n > 0 ? { when } : {}) }],
    }),
  );
  const input = { req, identity, nowMs };
  if (policy.evaluate(input, state).reason !== 'allowed') throw new Error(`n=${n}: not allowed`);
  const r = time(() => policy.evaluate(input, state));
  if (n === 0) base = r.ns;
  row(`  ${n} condition(s) + role + scope`, r, n === 0 ? '' : `(+${((r.ns - base) / n).toFixed(0)} ns per condition)`);
}
