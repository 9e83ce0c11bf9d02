import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { createStateStore, type StateStore } from '../../src/state/index.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { waitFor } from '../helpers/server.js';
import { redisConfig } from './fixtures.js';

/**
 * A Redis that restarts without persistence comes back empty and every suspension is gone: the
 * sidecar reads INFO persistence at every connect, warns, and shows it in a gauge. Real
 * redis-server processes, one without any persistence and one with AOF.
 */
let redis: RedisProcess | undefined;
let store: StateStore | undefined;
afterEach(async () => {
  await store?.close();
  await redis?.stop();
  store = redis = undefined;
});

async function open(url: string): Promise<{ metrics: Metrics; logs: Array<Record<string, unknown>> }> {
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const metrics = createMetrics();
  store = createStateStore(redisConfig(url), { logger: createLogger('info', sink), metrics });
  await store.start();
  return { metrics, logs };
}

async function gauge(metrics: Metrics): Promise<Record<string, number>> {
  const m = await metrics.stateRedisPersistence.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels.mode), v.value]));
}

describe('Redis persistence check', () => {
  it("--save '' --appendonly no: a warning and mode none", async () => {
    redis = await startRedis({ extraArgs: ['--save', '', '--appendonly', 'no'] });
    const { metrics, logs } = await open(redis.url);
    await waitFor(async () => (await gauge(metrics)).none === 1, 10_000, 'gauge none');
    expect(await gauge(metrics)).toEqual({ none: 1, unknown: 0, rdb: 0, aof: 0 });
    await waitFor(() => logs.some((l) => l.redis_persistence === 'none' && /neither AOF nor RDB/.test(String(l.msg))), 5000, 'warning');
    expect(logs.find((l) => l.redis_persistence === 'none')?.level).toBe(40);
  });

  it('--appendonly yes: mode aof and no warning', async () => {
    redis = await startRedis({ extraArgs: ['--appendonly', 'yes'] });
    const { metrics, logs } = await open(redis.url);
    await waitFor(async () => (await gauge(metrics)).aof === 1, 10_000, 'gauge aof');
    expect(await gauge(metrics)).toEqual({ none: 0, unknown: 0, rdb: 0, aof: 1 });
    expect(logs.some((l) => l.redis_persistence !== undefined)).toBe(false);
  });

  it('RDB snapshots only: mode rdb, with a warning', async () => {
    redis = await startRedis({ extraArgs: ['--save', '3600 1', '--appendonly', 'no'] });
    const { metrics, logs } = await open(redis.url);
    await waitFor(async () => (await gauge(metrics)).rdb === 1, 10_000, 'gauge rdb');
    expect(logs.some((l) => l.redis_persistence === 'rdb')).toBe(true);
  });

  it('read again on every reconnect: AOF turned off, connections dropped, the gauge flips to none', async () => {
    redis = await startRedis({ extraArgs: ['--appendonly', 'yes'] });
    const { metrics, logs } = await open(redis.url);
    await waitFor(async () => (await gauge(metrics)).aof === 1, 10_000, 'gauge aof');
    await redis.cli('CONFIG', 'SET', 'appendonly', 'no');
    await redis.cli('CLIENT', 'KILL', 'TYPE', 'normal');
    await waitFor(async () => (await gauge(metrics)).none === 1, 25_000, 'gauge none after reconnect');
    expect(logs.some((l) => l.redis_persistence === 'none')).toBe(true);
  }, 60_000);
});
