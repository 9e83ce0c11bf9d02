import type { Scenario } from '../lib/scenario.js';
import { allowCachedMemory } from './allow-cached-memory.js';
import { allowCachedRedis } from './allow-cached-redis.js';
import { allowCachedConditions } from './allow-cached-conditions.js';
import { uniqueTokens } from './unique-tokens.js';
import { realisticMix } from './realistic-mix.js';
import { scaling } from './scaling.js';
import { verifyEveryCall } from './verify-every-call.js';
import { latencyHalfLoad } from './latency-half-load.js';
import { memory } from './memory.js';
import { workersScaling } from './workers-scaling.js';

/** In run order: the latency scenario reuses the maximum measured by the first one. */
export const SCENARIOS: readonly Scenario[] = [allowCachedMemory, allowCachedRedis, allowCachedConditions, latencyHalfLoad, uniqueTokens, verifyEveryCall, realisticMix, workersScaling, memory, scaling];
