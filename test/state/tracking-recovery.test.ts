import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { StateStore } from '../../src/state/index.js';
import { eventually, startRedis, type RedisProcess } from '../helpers/redis.js';
import { openStore, plainClient, redisConfig } from './fixtures.js';

/**
 * In a failover or a network blip the invalidation subscriber and the tracking connection drop
 * and come back at slightly different moments. Whatever the interleaving, the channel must end
 * up tracking again, and invalidations must flow: a channel left unhealthy would let the mirror
 * go stale and, past max_staleness_s, deny everyone.
 */
/** For a single Redis, tracking is switched on for the data connection itself. */
const TRACKER = 'zt-authz-data';

describe('tracking channel recovery', () => {
  let redis: RedisProcess;
  let store: StateStore;
  let cli: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    ({ store } = await openStore(redisConfig(redis.url, {}, { heartbeat_interval_ms: 100 })));
    cli = plainClient(redis.url);
    await cli.connect();
  });
  afterAll(async () => {
    cli?.disconnect();
    await store?.close();
    await redis?.stop();
  });

  async function clientId(name: string): Promise<string> {
    const list = (await cli.call('CLIENT', 'LIST')) as string;
    const line = list.split('\n').find((l) => l.includes(` name=${name} `));
    if (!line) throw new Error(`no connection named ${name}`);
    return /id=(\d+)/.exec(line)![1]!;
  }

  async function soon<T>(fn: () => Promise<T>, withinMs: number): Promise<T> {
    const until = Date.now() + withinMs;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (Date.now() > until) throw err;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  it('recovers when the tracker drops while a reconnected subscriber is still setting up', async () => {
    await eventually(() => store.health().connected, 5000, 'first connect');
    for (let i = 0; i < 15; i++) {
      const old = await clientId('zt-authz-invalidations');
      await cli.call('CLIENT', 'KILL', 'ID', old);
      // Kill the tracker the moment the new subscriber connection shows up, i.e. mid-setup.
      const until = Date.now() + 3000;
      let fresh: string | undefined;
      while (Date.now() < until) {
        fresh = await clientId('zt-authz-invalidations').catch(() => undefined);
        if (fresh !== undefined && fresh !== old) break;
      }
      // The tracker may itself be between connections at this instant (seen in CI): kill it once it is back.
      await cli.call('CLIENT', 'KILL', 'ID', await soon(() => clientId(TRACKER), 3000));
      await eventually(() => store.health().connected, 5000, `reconnect, round ${i}`);
      const sub = `setup-${i}`;
      await cli.set(`suspended_user:${sub}`, 'true', 'EX', 600);
      await eventually(() => store.userSuspended(sub, Date.now()) === 'listed', 3000, `invalidation after round ${i}`);
    }
  }, 120_000);

  it('recovers from the subscriber and the tracker dropping in every order and spacing', async () => {
    await eventually(() => store.health().connected, 5000, 'first connect');
    // The subscriber reconnects after 50-100 ms of backoff and then spends a few ms setting up;
    // the tracker dropping inside that window is the interleaving that used to stick.
    const delays = [0, 20, 45, 55, 60, 65, 70, 75, 80, 90, 100, 120];
    for (const [i, delayMs] of delays.entries()) {
      const first = i % 2 === 0 ? 'zt-authz-invalidations' : TRACKER;
      const second = first === 'zt-authz-invalidations' ? TRACKER : 'zt-authz-invalidations';
      await cli.call('CLIENT', 'KILL', 'ID', await soon(() => clientId(first), 3000));
      await new Promise((r) => setTimeout(r, delayMs));
      await cli.call('CLIENT', 'KILL', 'ID', await clientId(second)).catch(() => undefined);
      await eventually(() => store.health().connected, 5000, `reconnect after killing ${first}, then ${second} ${delayMs} ms later`);
      const sub = `kill-${i}`;
      await cli.set(`suspended_user:${sub}`, 'true', 'EX', 600);
      await eventually(() => store.userSuspended(sub, Date.now()) === 'listed', 3000, `invalidation after round ${i}`);
    }
    // A beat in flight across the last kill may still fail once; the channel must end up healthy.
    await eventually(() => store.health().connected, 5000, 'healthy at the end');
    expect(store.health()).toMatchObject({ connected: true, ready: true });
  }, 120_000);
});
