import type { z } from 'zod';

/** The keys an object schema accepts at `path` (array indexes and record keys step inside). */
export function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let node: z.ZodType | undefined = unwrap(schema);
  for (const step of path) {
    if (!node) return [];
    const def = node.def as unknown as Record<string, unknown>;
    if (def.type === 'object') node = unwrap((def.shape as Record<string, z.ZodType>)[String(step)]);
    else if (def.type === 'array') node = unwrap(def.element as z.ZodType);
    else if (def.type === 'record') node = unwrap(def.valueType as z.ZodType);
    else return [];
  }
  const def = node?.def as unknown as Record<string, unknown> | undefined;
  return def?.type === 'object' ? Object.keys(def.shape as object) : [];
}

function unwrap(s: z.ZodType | undefined): z.ZodType | undefined {
  let node = s;
  for (let i = 0; node && i < 10; i++) {
    const def = node.def as unknown as Record<string, unknown>;
    if (def.type === 'default' || def.type === 'prefault' || def.type === 'optional' || def.type === 'nullable') node = def.innerType as z.ZodType;
    else if (def.type === 'pipe') node = def.in as z.ZodType;
    else return node;
  }
  return node;
}

/** The closest known key when it is close enough to be a typo (edit distance ≤ 2, or ≤ a third of its length). */
export function didYouMean(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(word.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) && bestD < word.length ? best : undefined;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}
