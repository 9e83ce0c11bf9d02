import type { StateConfig } from '../config/schema/state.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { StateStore } from './types.js';
import { MemoryStateStore } from './memory-store.js';
import { RedisStateStore } from './redis-store.js';

export type { ListVerdict, StateHealth, StateStore, StateView } from './types.js';
export { MemoryStateStore } from './memory-store.js';
export { RedisStateStore } from './redis-store.js';
export { StateInputError } from './keys.js';

export function createStateStore(cfg: StateConfig, deps: { logger: Logger; metrics: Metrics }): StateStore {
  return cfg.backend === 'redis' ? new RedisStateStore(cfg, deps) : new MemoryStateStore(cfg, deps);
}

/** `serve --redis URL` / ZT_AUTHZ_REDIS: switch the state section to that Redis without editing the file. */
export function withRedisUrl(cfg: StateConfig, url: string): StateConfig {
  if (!/^rediss?:\/\//.test(url)) throw new Error(`invalid Redis URL ${JSON.stringify(url)}: expected redis:// or rediss://`);
  const { sentinel: _s, cluster: _c, ...redis } = cfg.redis;
  return { ...cfg, backend: 'redis', redis: { ...redis, url } };
}
