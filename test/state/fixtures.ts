import { afterEach } from 'vitest';
import { Redis } from 'ioredis';
import type { RedisProcess } from '../helpers/redis.js';
import { stateSchema, type StateConfig } from '../../src/config/schema/state.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { createStateStore, type RedisStateStore, type StateStore } from '../../src/state/index.js';
import { runAdmin } from '../../src/cli/admin.js';

export type StateInput = Parameters<typeof stateSchema.parse>[0];

/** Test config: fast heartbeat so outages are noticed quickly; everything else as shipped. */
export function redisConfig(url: string, extra: Record<string, unknown> = {}, redis: Record<string, unknown> = {}): StateConfig {
  return stateSchema.parse({
    backend: 'redis',
    redis: { url, heartbeat_interval_ms: 200, ...redis },
    ...extra,
  });
}

export async function openStore(cfg: StateConfig): Promise<{ store: StateStore; metrics: Metrics }> {
  const metrics = createMetrics();
  const store = createStateStore(cfg, { logger: silentLogger, metrics });
  await store.start();
  return { store, metrics };
}

/** How many state events of one kind (resync, error, invalidation, ...) a store's metrics counted. */
export function eventCount(metrics: Metrics, event: string): Promise<number> {
  return metrics.stateEvents.get().then((m) => m.values.find((v) => v.labels['event'] === event)?.value ?? 0);
}

/** A plain client standing in for "any other tool" (redis-cli, the guides' monitor). */
export function plainClient(url: string): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true, retryStrategy: () => null });
  c.on('error', () => undefined);
  return c;
}

/** Runs the admin CLI in-process and captures what it prints. */
export async function admin(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    const code = await runAdmin(argv);
    return { code, out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

/** What a test of a describe opened against its own Redis: closed after each test, client first. */
export interface StateRig {
  redis?: RedisProcess;
  stores: RedisStateStore[];
  cli?: Redis;
}

/** Call in a describe: registers the teardown of what each of its tests put in the rig. */
export function stateRig(): StateRig {
  const rig: StateRig = { stores: [] };
  afterEach(async () => {
    rig.cli?.disconnect();
    await Promise.all(rig.stores.splice(0).map((s) => s.close()));
    await rig.redis?.stop();
    rig.redis = undefined;
    rig.cli = undefined;
  });
  return rig;
}
