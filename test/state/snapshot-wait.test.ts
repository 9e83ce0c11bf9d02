import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Redis } from 'ioredis';
import { eventually, startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/server.js';
import { WakeablePublishWaiter } from '../../src/state/publish-waiter.js';
import { freshSnapshot, snapshotKeys } from '../../src/state/snapshot.js';
import type { RedisStateStore } from '../../src/state/index.js';
import { openStore, plainClient, redisConfig, stateRig } from './fixtures.js';

/**
 * How a fleet waits for a shared snapshot: a waiting sidecar hears the publish through its
 * tracking instead of polling for it, and resyncs that arrive together share one build.
 */
describe('the publish waiter', () => {
  afterEach(() => void vi.useRealTimers());

  async function settle(p: Promise<void>): Promise<number> {
    let done = false;
    void p.then(() => (done = true));
    let ms = 0;
    while (!done && ms < 10_000) {
      await vi.advanceTimersByTimeAsync(10);
      ms += 10;
    }
    return ms;
  }

  it('without a publish waits the 2-4 s fallback; a publish during the wait ends it within the 1 s jitter', async () => {
    vi.useFakeTimers();
    const w = new WakeablePublishWaiter();
    w.arm();
    const fallback = await settle(w.wait());
    expect(fallback).toBeGreaterThanOrEqual(2000);
    expect(fallback).toBeLessThanOrEqual(4010);
    w.arm();
    const p = w.wait();
    await vi.advanceTimersByTimeAsync(500);
    w.published();
    w.published();
    expect(await settle(p)).toBeLessThanOrEqual(1010);
    expect(w.heard).toBe(2);
  });

  it('a publish between the poll and the wait is not lost; one heard before the poll does not cut the next wait short', async () => {
    vi.useFakeTimers();
    const w = new WakeablePublishWaiter();
    w.arm();
    w.published();
    expect(await settle(w.wait())).toBeLessThanOrEqual(1010);
    w.arm();
    expect(await settle(w.wait())).toBeGreaterThanOrEqual(2000);
  });
});

describe('waiting for a shared snapshot on a real Redis', () => {
  const rig = stateRig();

  async function scriptCalls(c: Redis): Promise<number> {
    const info = await c.info('commandstats');
    let n = 0;
    for (const m of info.matchAll(/cmdstat_(evalsha|eval):calls=(\d+)/g)) n += Number(m[2]);
    return n;
  }

  it('a sidecar waiting on another builder polls once, hears the publish and reads the published snapshot', async () => {
    const r = (rig.redis = await startRedis());
    rig.cli = plainClient(r.url);
    await rig.cli.connect();
    const c = rig.cli;
    await c.set('suspended_user:mallory', 'true', 'EX', 3600);
    // Another sidecar holds the lease for a minute: only its publish can end this one's wait.
    await c.set('zt_mirror:lease', 'the-other-builder', 'PX', 60_000);
    const { store } = await openStore(redisConfig(r.url));
    const s = store as RedisStateStore;
    rig.stores.push(s);
    await eventually(() => false === s.synced, 1000, 'store started');
    let firstPoll = 0;
    await waitFor(async () => (firstPoll = await scriptCalls(c)) >= 1, 10_000, 'the first poll');
    // Polling every 100-250 ms, as before, would be 6-15 more calls by now; the fallback is 2-4 s.
    // (An upper bound: a slow machine can only make fewer.)
    await new Promise((res) => setTimeout(res, 1500));
    expect((await scriptCalls(c)) - firstPoll).toBeLessThanOrEqual(2);
    expect(s.synced).toBe(false);
    expect(s.snapshotPublishesHeard).toBe(0);
    // The other builder publishes (freshSnapshot with its lease id builds under that lease).
    const builder = plainClient(r.url);
    await builder.connect();
    try {
      await freshSnapshot(builder, '', snapshotKeys(''), () => true, (ms) => new Promise((res) => setTimeout(res, ms)), 'the-other-builder');
    } finally {
      builder.disconnect();
    }
    await eventually(() => s.synced, 15_000, 'in sync from the published snapshot');
    expect(s.snapshotPublishesHeard).toBeGreaterThanOrEqual(1);
    expect(s.lastSnapshotSource).toBe('shared');
    expect(s.userSuspended('mallory', Date.now())).toBe('listed');
  }, 60_000);

  it('sidecars that start resyncing together share one build', async () => {
    const r = (rig.redis = await startRedis());
    rig.cli = plainClient(r.url);
    await rig.cli.connect();
    await rig.cli.set('suspended_user:mallory', 'true', 'EX', 3600);
    const opening: Promise<void>[] = [];
    for (let i = 0; i < 6; i++) {
      opening.push(openStore(redisConfig(r.url)).then(({ store }) => void rig.stores.push(store as RedisStateStore)));
      await new Promise((res) => setTimeout(res, 50));
    }
    await Promise.all(opening);
    await eventually(() => rig.stores.length === 6 && rig.stores.every((s) => s.synced), 20_000, 'all six in sync');
    // Each arrival after the build began takes it with its keeper's log instead of another build.
    expect(rig.stores.filter((s) => s.lastSnapshotSource === 'built').length).toBe(1);
    for (const s of rig.stores) expect(s.userSuspended('mallory', Date.now())).toBe('listed');
  }, 60_000);
});
