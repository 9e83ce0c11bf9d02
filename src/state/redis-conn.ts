import { createRequire } from 'node:module';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { StateConfig } from '../config/schema/state.js';

/**
 * ioredis is loaded on first use (~10 MB of RSS): a sidecar on the in-memory store never pays for it.
 * It is a CommonJS package, so a synchronous require keeps the store constructors synchronous.
 */
let ioredis: typeof import('ioredis') | undefined;
function lib(): typeof import('ioredis') {
  ioredis ??= createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
  return ioredis;
}

type RedisCfg = StateConfig['redis'];

/**
 * Reconnect backoff: 50 ms doubling to 2 s, with jitter so a fleet of sidecars does not reconnect
 * in step. At the ceiling (a Redis down for more than ~3 s: a restart) the delay is drawn from
 * 1-2 s rather than 2 s + 50 ms, so a fleet comes back spread over a second instead of 50 ms and
 * the handshakes and snapshot reads of 10,000 sidecars do not queue up on Redis in one burst. The
 * first retries keep their short, narrow delays: a blip is over in ~100 ms.
 */
export function backoffMs(attempt: number): number {
  const base = Math.min(2000, 50 * 2 ** Math.min(attempt, 6));
  return base < 2000 ? base + Math.floor(Math.random() * 50) : 1000 + Math.floor(Math.random() * 1000);
}

/**
 * ioredis defaults turn an outage into a hang (offline queue, 20 retries per request, no command
 * timeout). Every connection here fails fast instead and reconnects in the background.
 * RESP2 throughout: tracking invalidations reach a RESP2 subscriber as ordinary Pub/Sub messages.
 */
export function safeOptions(cfg: RedisCfg, password?: string): RedisOptions {
  return {
    protocol: 2,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: cfg.command_timeout_ms,
    connectTimeout: cfg.connect_timeout_ms,
    retryStrategy: backoffMs,
    autoResubscribe: false,
    autoResendUnfulfilledCommands: false,
    disableClientInfo: true,
    ...(password === undefined ? {} : { password }),
  };
}

function env(name: string | undefined): string | undefined {
  return name === undefined ? undefined : process.env[name];
}

export interface NodeAddress {
  readonly host: string;
  readonly port: number;
}

export type DataClient = Redis | Cluster;

/**
 * ioredis 6 drops the command name when call()/callBuffer() go through auto-pipelining (it sends
 * the first argument as the command), so the commands issued that way bypass it.
 */
const CALLED = ['CLIENT', 'EVALSHA', 'EVAL'];

/** A client for reads and writes: standalone URL, Sentinel-managed master, or a Cluster. Call connect(). */
export function createDataClient(cfg: RedisCfg, connectionName: string): DataClient {
  if (cfg.cluster !== undefined) {
    const redisOptions = { ...safeOptions(cfg, env(cfg.cluster.password_env)), connectionName };
    const options: ClusterOptions = {
      redisOptions,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      autoPipeliningIgnoredCommands: CALLED,
      lazyConnect: true,
      maxRedirections: 4,
      clusterRetryStrategy: backoffMs,
      slotsRefreshTimeout: cfg.connect_timeout_ms,
    };
    return new (lib().Cluster)(cfg.cluster.nodes.map((n) => ({ host: n.host, port: n.port })), options);
  }
  return createNodeClient(cfg, connectionName, undefined, { enableAutoPipelining: true, autoPipeliningIgnoredCommands: CALLED, lazyConnect: true });
}

/** One connection to the standalone/Sentinel master, or to a given cluster node. */
export function createNodeClient(cfg: RedisCfg, connectionName: string, node?: NodeAddress, extra: RedisOptions = {}): Redis {
  if (node !== undefined) {
    return new (lib().Redis)({ ...safeOptions(cfg, env(cfg.cluster?.password_env)), host: node.host, port: node.port, connectionName, ...extra });
  }
  if (cfg.sentinel !== undefined) {
    const password = env(cfg.sentinel.password_env);
    return new (lib().Redis)({
      ...safeOptions(cfg, password),
      sentinels: cfg.sentinel.sentinels.map((s) => ({ host: s.host, port: s.port })),
      name: cfg.sentinel.name,
      ...(password === undefined ? {} : { sentinelPassword: password }),
      failoverDetector: true,
      connectionName,
      ...extra,
    });
  }
  return new (lib().Redis)(cfg.url ?? 'redis://127.0.0.1:6379', { ...safeOptions(cfg), connectionName, ...extra });
}

/** For logs: where we connect, without credentials. */
export function describeTarget(cfg: RedisCfg): string {
  if (cfg.cluster !== undefined) return `cluster ${cfg.cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  if (cfg.sentinel !== undefined) return `sentinel ${cfg.sentinel.name}`;
  try {
    const u = new URL(cfg.url ?? 'redis://127.0.0.1:6379');
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return 'redis (unparsable url)';
  }
}
