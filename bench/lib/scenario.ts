import type { BenchContext } from './context.js';
import type { ScenarioResult } from './types.js';

/** One benchmark scenario. Apart from types.ts, which context.ts imports: the two stay acyclic. */
export interface Scenario {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  run(ctx: BenchContext): Promise<ScenarioResult>;
}
