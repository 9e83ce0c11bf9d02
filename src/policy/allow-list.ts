import { ownValue, SENSITIVITY_RANK } from './ranks.js';

/**
 * `*` matches every resource; `orders/*` matches `orders/x` and `orders/x/y` but not `orders`
 * itself (grant both entries to cover both); anything else matches exactly. `*` elsewhere is literal.
 */
export function entryMatches(entry: string, resource: string): boolean {
  if (entry === resource || entry === '*') return true;
  const n = entry.length;
  return (
    n >= 2 &&
    entry.charCodeAt(n - 1) === 0x2a &&
    entry.charCodeAt(n - 2) === 0x2f &&
    resource.length >= n &&
    resource.startsWith(entry.slice(0, n - 1))
  );
}

/**
 * True when the allow-list claim grants `resource` for `method`. The claim must be an array; each
 * entry is a name or `{name, sensitivity?, methods?}`. An object entry is ignored when its
 * sensitivity is above `capRank` (the current risk tier's cap) or not a known level, or when it
 * lists methods and `method` is not one of them. Entries of any other shape are ignored.
 */
export function allowListGrants(claim: unknown, resource: string, method: string, capRank: number): boolean {
  if (!Array.isArray(claim)) return false;
  for (const entry of claim) {
    if (typeof entry === 'string') {
      if (entryMatches(entry, resource)) return true;
      continue;
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) continue;
    const name = ownValue(entry, 'name');
    if (typeof name !== 'string' || !entryMatches(name, resource)) continue;
    if (Object.hasOwn(entry, 'sensitivity')) {
      const rank = SENSITIVITY_RANK.get(ownValue(entry, 'sensitivity'));
      if (rank === undefined || rank > capRank) continue;
    }
    if (Object.hasOwn(entry, 'methods')) {
      const methods = ownValue(entry, 'methods');
      if (!Array.isArray(methods) || !methods.includes(method)) continue;
    }
    return true;
  }
  return false;
}
