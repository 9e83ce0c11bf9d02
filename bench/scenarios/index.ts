import type { Scenario } from '../lib/types.js';
import { allowCachedMemory } from './allow-cached-memory.js';

/** In run order: the latency scenario reuses the maximum measured by the first one. */
export const SCENARIOS: readonly Scenario[] = [allowCachedMemory];
