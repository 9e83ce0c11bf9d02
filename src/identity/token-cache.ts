import type { AuthResult } from '../model.js';
import type { KeyRecord } from './keys.js';

export interface CacheEntry {
  /** Prebuilt so a hit returns without allocating. */
  readonly result: AuthResult & { ok: true };
  /** min(exp + skew, verifiedAt + max_age), in ms. */
  readonly expiresMs: number;
  /** max(nbf, iat) - skew, in ms. */
  readonly notBeforeMs: number;
  readonly key: KeyRecord;
  /** Second-chance bit for CLOCK eviction; set on hit instead of reordering the Map. */
  hot: boolean;
}

/**
 * Verified-token cache keyed on the exact token string. Holds identities only, never decisions.
 * Eviction is CLOCK (an LRU approximation): a hit costs one Map lookup and a flag write, instead of
 * the delete + set a strict LRU would need on every hit.
 */
export class TokenCache {
  private readonly map = new Map<string, CacheEntry>();
  /**
   * A direct-mapped front for the hottest tokens. Every request decodes a fresh copy of the
   * token string, so Map.get must hash ~1 KB each time; a slot chosen from the last characters
   * (signature bytes, effectively random) plus one string comparison is several times cheaper.
   * It only ever points at entries of the map, and callers re-check expiry and key liveness on hits.
   */
  private readonly recentTokens: (string | undefined)[] = new Array<string | undefined>(RECENT_SLOTS).fill(undefined);
  private readonly recentEntries: (CacheEntry | undefined)[] = new Array<CacheEntry | undefined>(RECENT_SLOTS).fill(undefined);

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.map.size;
  }

  get(token: string): CacheEntry | undefined {
    const slot = recentSlot(token);
    if (this.recentTokens[slot] === token) return this.recentEntries[slot];
    const entry = this.map.get(token);
    if (entry !== undefined) {
      this.recentTokens[slot] = token;
      this.recentEntries[slot] = entry;
    }
    return entry;
  }

  delete(token: string): void {
    this.forget(token);
    this.map.delete(token);
  }

  set(token: string, entry: CacheEntry, nowMs: number): void {
    if (this.map.size >= this.maxEntries && !this.map.has(token)) this.evictOne(nowMs);
    this.forget(token);
    this.map.set(token, entry);
  }

  clear(): void {
    this.map.clear();
    this.recentTokens.fill(undefined);
    this.recentEntries.fill(undefined);
  }

  private forget(token: string): void {
    const slot = recentSlot(token);
    if (this.recentTokens[slot] === token) {
      this.recentTokens[slot] = undefined;
      this.recentEntries[slot] = undefined;
    }
  }

  private evictOne(nowMs: number): void {
    let secondChances = 16;
    for (const [token, entry] of this.map) {
      if (entry.hot && entry.expiresMs > nowMs && entry.key.live && secondChances-- > 0) {
        entry.hot = false;
        // Moving it to the tail is the "second chance".
        this.map.delete(token);
        this.map.set(token, entry);
        continue;
      }
      this.forget(token);
      this.map.delete(token);
      return;
    }
  }
}

const RECENT_SLOTS = 1024;

function recentSlot(token: string): number {
  const n = token.length;
  if (n < 4) return n & (RECENT_SLOTS - 1);
  return (token.charCodeAt(n - 1) * 961 + token.charCodeAt(n - 2) * 31 + token.charCodeAt(n - 3) + n) & (RECENT_SLOTS - 1);
}
