import type { AuthResult } from '../decision/types.js';
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

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.map.size;
  }

  get(token: string): CacheEntry | undefined {
    return this.map.get(token);
  }

  delete(token: string): void {
    this.map.delete(token);
  }

  set(token: string, entry: CacheEntry, nowMs: number): void {
    if (this.map.size >= this.maxEntries && !this.map.has(token)) this.evictOne(nowMs);
    this.map.set(token, entry);
  }

  clear(): void {
    this.map.clear();
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
      this.map.delete(token);
      return;
    }
  }
}
