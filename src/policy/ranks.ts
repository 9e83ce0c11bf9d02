import type { CHECK_NAMES } from '../config/schema/policy.js';

export type CheckName = (typeof CHECK_NAMES)[number];

/** Maps, not object literals: a claim value such as "constructor" must not hit the prototype. */
export const SENSITIVITY_RANK: ReadonlyMap<unknown, number> = new Map([
  ['low', 0],
  ['medium', 1],
  ['high', 2],
]);
export const SENSITIVITY_NAMES = ['low', 'medium', 'high'] as const;

export const CLASSIFICATION_RANK: ReadonlyMap<unknown, number> = new Map([
  ['public', 0],
  ['internal', 1],
  ['confidential', 2],
  ['restricted', 3],
]);
export const CLASSIFICATION_NAMES = ['public', 'internal', 'confidential', 'restricted'] as const;

/** Claims come from JSON.parse; read own properties only so inherited names never count as claims. */
export function ownValue(obj: object, key: string): unknown {
  return Object.hasOwn(obj, key) ? (obj as Record<string, unknown>)[key] : undefined;
}
