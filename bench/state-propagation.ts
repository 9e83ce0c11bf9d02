/**
 * Propagation latency: from a write by a separate Redis client (as `redis-cli SET ...` or the
 * guides' monitor would do) to the sidecar's in-process mirror showing it. Also the cost of the
 * hot-path lookups. Run: npx tsx bench/state-propagation.ts [writes=200]
 */
import { Redis } from 'ioredis';
import { stateSchema } from '../src/config/schema/state.js';
import { silentLogger } from '../src/observability/logger.js';
import { createMetrics } from '../src/observability/metrics.js';
import { createStateStore, type StateStore } from '../src/state/index.js';
import { startRedis, startRedisCluster } from '../test/helpers/redis.js';

const WRITES = Number(process.argv[2] ?? 200);

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

function summary(label: string, samples: number[]): void {
  const s = [...samples].sort((a, b) => a - b);
  const f = (n: number) => n.toFixed(2);
  console.log(`${label.padEnd(34)} n=${s.length}  p50=${f(pct(s, 50))} ms  p99=${f(pct(s, 99))} ms  max=${f(s[s.length - 1] ?? NaN)} ms`);
}

/** Spins on setImmediate (the event loop stays free to process the invalidation) until cond holds. */
function until(cond: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 5000;
    const tick = () => (cond() ? resolve() : Date.now() > deadline ? reject(new Error('not propagated within 5 s')) : setImmediate(tick));
    tick();
  });
}

async function propagation(label: string, store: StateStore, write: (key: string, del: boolean) => Promise<unknown>): Promise<void> {
  const set: number[] = [];
  const del: number[] = [];
  for (let i = 0; i < WRITES; i++) {
    const user = `prop-${i}`;
    let t = process.hrtime.bigint();
    await write(`suspended_user:${user}`, false);
    await until(() => store.userSuspended(user, Date.now()) === 'listed');
    set.push(Number(process.hrtime.bigint() - t) / 1e6);
    t = process.hrtime.bigint();
    await write(`suspended_user:${user}`, true);
    await until(() => store.userSuspended(user, Date.now()) === 'clear');
    del.push(Number(process.hrtime.bigint() - t) / 1e6);
    await new Promise((r) => setTimeout(r, 2));
  }
  summary(`${label} SET -> listed`, set);
  summary(`${label} DEL -> clear`, del);
}

function lookupCost(store: StateStore): void {
  const N = 2_000_000;
  const now = Date.now();
  const time = (label: string, fn: (i: number) => unknown) => {
    for (let i = 0; i < 100_000; i++) fn(i);
    const t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) fn(i);
    console.log(`${label.padEnd(34)} ${(Number(process.hrtime.bigint() - t) / N).toFixed(0)} ns/call`);
  };
  const users = Array.from({ length: 1024 }, (_, i) => `user-${i}`);
  const v4 = Array.from({ length: 1024 }, (_, i) => `172.${(i >> 8) & 255}.${i & 255}.9`);
  const v6 = Array.from({ length: 1024 }, (_, i) => `2001:db8:${i.toString(16)}::9`);
  time('userSuspended', (i) => store.userSuspended(users[i & 1023] as string, now));
  time('liveRisk', (i) => store.liveRisk(users[i & 1023] as string, now));
  time('ipBlocked IPv4 (1000 CIDRs, 5 lens)', (i) => store.ipBlocked(v4[i & 1023] as string, now));
  time('ipBlocked IPv6 (1000 CIDRs, 5 lens)', (i) => store.ipBlocked(v6[i & 1023] as string, now));
}

async function main(): Promise<void> {
  const metrics = createMetrics();
  const redis = await startRedis();
  const writer = new Redis(redis.url);
  const store = createStateStore(stateSchema.parse({ backend: 'redis', redis: { url: redis.url } }), { logger: silentLogger, metrics });
  console.log(`state propagation, ${WRITES} writes each, redis-server ${redis.port} (loopback), separate ioredis writer`);
  try {
    await store.start();
    await propagation('standalone', store, (k, d) => (d ? writer.del(k) : writer.set(k, 'true', 'EX', 60)));
    // Lookups against a realistically filled mirror: 1000 CIDRs over 5 prefix lengths per family.
    const p = writer.pipeline();
    for (let i = 0; i < 1000; i++) {
      const len = [8, 16, 20, 24, 28][i % 5] as number;
      p.set(`blocked_cidr:${(i % 200) + 11}.${i % 256}.0.0/${len}`.replace(/\.0\.0\/(2[048])$/, '.0.0/16'), 'true', 'EX', 600);
      p.set(`blocked_cidr:2001:db8:${(i + 2000).toString(16)}::/${[32, 40, 48, 56, 64][i % 5]}`, 'true', 'EX', 600);
      p.set(`suspended_user:bulk-${i}`, 'true', 'EX', 600);
    }
    await p.exec();
    await until(() => store.userSuspended('bulk-999', Date.now()) === 'listed');
    await new Promise((r) => setTimeout(r, 200));
    lookupCost(store);
  } finally {
    await store.close();
    writer.disconnect();
    await redis.stop();
  }

  const cluster = await startRedisCluster(3);
  const cstore = createStateStore(stateSchema.parse({ backend: 'redis', redis: { cluster: { nodes: cluster.seeds } } }), {
    logger: silentLogger,
    metrics: createMetrics(),
  });
  const { Cluster } = await import('ioredis');
  const cwriter = new Cluster(cluster.seeds);
  try {
    await cstore.start();
    await propagation('cluster(3)', cstore, (k, d) => (d ? cwriter.del(k) : cwriter.set(k, 'true', 'EX', 60)));
  } finally {
    await cstore.close();
    cwriter.disconnect();
    await cluster.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
