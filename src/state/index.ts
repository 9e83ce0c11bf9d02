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
