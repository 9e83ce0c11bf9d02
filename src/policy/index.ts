export { compilePolicy } from './compile.js';
export { CHECK_ORDER, type PolicyCheckName } from './order.js';
export { isCanonicalPath } from './routes.js';
export { stepUpChallenge } from './risk.js';
export type { CompiledPolicy, PolicyInput, PolicyOutcome } from './types.js';
