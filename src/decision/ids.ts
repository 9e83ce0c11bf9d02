import { randomBytes } from 'node:crypto';

/**
 * Decision ids must be unique across the mesh and cheap on the hot path: a random per-process
 * prefix plus a counter costs one string concat, where randomUUID per call costs an entropy read.
 */
export function createDecisionIds(): () => string {
  const prefix = randomBytes(6).toString('hex') + '-';
  let n = 0;
  return () => prefix + (n++).toString(36);
}
