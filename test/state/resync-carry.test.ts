import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { StateStore } from '../../src/state/index.js';
import { freshSnapshot, snapshotKeys } from '../../src/state/snapshot.js';
import { startRedis, type RedisProcess } from '../helpers/redis.js';
import { waitFor } from '../helpers/server.js';
import { eventCount, openStore, plainClient, redisConfig } from './fixtures.js';

/**
 * A resync that fails after its snapshot was published but before applying it hands its place to
 * the retry while tracking stays on: the retry may use that same snapshot, and every key written
 * since the first attempt began is re-read on top of it. Here the sidecar's ACL user is refused
 * GETRANGE until the test grants it, and the lease stays held by another builder throughout, so
 * only the carried place lets the retry finish: a retry that started over would wait for a newer
 * snapshot that nobody may build.
 */
describe('a resync that fails before applying its snapshot', () => {
  let redis: RedisProcess;
  let cli: Redis;
  let builder: Redis;
  let store: StateStore | undefined;

  beforeAll(async () => {
    redis = await startRedis();
    cli = plainClient(redis.url);
    await cli.connect();
    builder = new Redis(redis.url);
  });
  afterAll(async () => {
    await store?.close();
    cli?.disconnect();
    builder?.disconnect();
    await redis?.stop();
  });

  it('retries on the same snapshot and still applies a suspension written between the attempts', async () => {
    await cli.set('suspended_user:before', 'true', 'EX', 600);
    await redis.cli('ACL', 'SETUSER', 'reader', 'on', '>pw', '~*', '&*', '+@all', '-getrange');
    // Another builder holds the lease for the whole test: this sidecar can only wait and read.
    const keys = snapshotKeys('');
    await cli.set(keys.lease, 'the-other-builder', 'PX', 120_000);
    const opened = await openStore(redisConfig(`redis://reader:pw@127.0.0.1:${redis.port}`));
    store = opened.store;
    const s = store;
    expect(s.health().ready).toBe(false);

    // The lease holder publishes a snapshot begun after the sidecar started waiting.
    await freshSnapshot(builder, '', keys, () => true, (ms) => new Promise((r) => setTimeout(r, ms)), 'the-other-builder');
    // Publishing hands the lease back; take it again so that no newer snapshot can be built.
    await cli.set(keys.lease, 'the-other-builder', 'PX', 120_000);
    await waitFor(async () => (await eventCount(opened.metrics, 'error')) >= 2, 20_000, 'reads of the published snapshot refused');

    // Written while the sidecar keeps failing: the snapshot it will use does not hold it.
    await cli.set('suspended_user:mallory', 'true', 'EX', 600);
    const failedAfterWrite = (await eventCount(opened.metrics, 'error')) + 1;
    await waitFor(async () => (await eventCount(opened.metrics, 'error')) >= failedAfterWrite, 20_000, 'another failed attempt after the write');
    expect(s.health().ready).toBe(false);

    await redis.cli('ACL', 'SETUSER', 'reader', '+getrange');
    await waitFor(async () => s.health().ready, 20_000, 'the retry to apply the published snapshot');
    expect(await cli.get(keys.lease)).toBe('the-other-builder');
    const now = Date.now();
    expect(s.userSuspended('before', now)).toBe('listed');
    expect(s.userSuspended('mallory', now)).toBe('listed');
    expect(s.userSuspended('nobody', now)).toBe('clear');
  }, 90_000);
});
