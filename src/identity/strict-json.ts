/**
 * JSON.parse silently keeps the last of duplicated keys, so `{"sub":"alice","sub":"admin"}` means
 * different things to different parsers (a classic claim-smuggling vector). This scanner runs on
 * text that JSON.parse already accepted, so it only has to find strings that are object keys.
 * Only runs on a verified-token cache miss.
 */
export function findDuplicateKey(text: string): string | undefined {
  const stack: (Set<string> | null)[] = [];
  let keys: Set<string> | null = null;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      let escaped = false;
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) {
          escaped = true;
          i++;
        } else if (d === 0x22) break;
      }
      if (keys === null) continue;
      let j = i + 1;
      while (j < n && isJsonSpace(text.charCodeAt(j))) j++;
      if (text.charCodeAt(j) !== 0x3a /* : */) continue;
      // "\u0061" and "a" are the same key; decode escapes before comparing.
      const key = escaped ? (JSON.parse(text.slice(start, i + 1)) as string) : text.slice(start + 1, i);
      if (keys.has(key)) return key;
      keys.add(key);
    } else if (c === 0x7b /* { */) {
      stack.push(keys);
      keys = new Set();
    } else if (c === 0x5b /* [ */) {
      stack.push(keys);
      keys = null;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      keys = stack.pop() ?? null;
    }
  }
  return undefined;
}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/**
 * Object keys written in `text`, which JSON.parse already accepted: in valid JSON a string
 * followed by `:` is a key and nothing else is. With ownKeyCount this proves "no duplicate key"
 * (duplicates collapse, so the parsed value has fewer keys) without findDuplicateKey's set and
 * substring per key; on every verified-token cache miss that scan cost about as much as JSON.parse.
 */
export function textKeyCount(text: string): number {
  let keys = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    if (text.charCodeAt(i) !== 0x22 /* " */) continue;
    for (i++; i < n; i++) {
      const d = text.charCodeAt(i);
      if (d === 0x5c /* \ */) i++;
      else if (d === 0x22) break;
    }
    let j = i + 1;
    while (j < n && isJsonSpace(text.charCodeAt(j))) j++;
    if (text.charCodeAt(j) === 0x3a /* : */) keys++;
  }
  return keys;
}

/**
 * Own keys of every object in a JSON.parse result, freezing each one on the way: a parsed token
 * part is never mutated afterwards, and one walk does both.
 */
export function freezeCountingKeys(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  Object.freeze(value);
  if (Array.isArray(value)) {
    let n = 0;
    for (const v of value) n += freezeCountingKeys(v);
    return n;
  }
  let n = 0;
  for (const k in value) {
    // Own keys only: an enumerable key added to Object.prototype must not count as one of ours.
    if (Object.hasOwn(value, k)) n += 1 + freezeCountingKeys((value as Record<string, unknown>)[k]);
  }
  return n;
}
