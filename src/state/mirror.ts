import { formatV4, networkKey, parseCidr, parseIp, type ParsedCidr } from '../ip.js';

/** Expiry time in ms since the epoch; Infinity for a key without TTL. */
export type ExpiresAt = number;

export interface RiskEntry {
  readonly score: number;
  readonly expiresAtMs: ExpiresAt;
}

export interface MirrorSnapshot {
  readonly suspended: Map<string, ExpiresAt>;
  readonly blockedIps: Map<string, ExpiresAt>;
  readonly blockedCidrs: Map<string, ExpiresAt>;
  readonly risk: Map<string, RiskEntry>;
}

export function emptySnapshot(): MirrorSnapshot {
  return { suspended: new Map(), blockedIps: new Map(), blockedCidrs: new Map(), risk: new Map() };
}

export interface ListedEntry {
  readonly id: string;
  /** Seconds left; null for a key without TTL. */
  readonly ttl_s: number | null;
  readonly score?: number;
}

export interface StateListing {
  readonly counts: ReturnType<Mirror['counts']>;
  readonly suspended: readonly ListedEntry[];
  readonly blocked_ips: readonly ListedEntry[];
  readonly blocked_cidrs: readonly ListedEntry[];
  readonly risk: readonly ListedEntry[];
}

/** RFC 5952-ish text of the 32-hex-digit expansion the mirror keys IPv6 by (zeros not compressed). */
function hexToV6(hex: string): string {
  return (hex.match(/.{4}/g) ?? []).map((g) => g.replace(/^0+(?=.)/, '')).join(':');
}

/** Per-prefix-length hash of network -> expiry: a lookup is one mask + Map.get per prefix length in use. */
interface CidrIndex {
  readonly prefixes: number[];
  readonly byPrefix: Map<number, Map<number | string, ExpiresAt>>;
}

function buildIndex(cidrs: Iterable<[ParsedCidr, ExpiresAt]>, v: 4 | 6): CidrIndex {
  const byPrefix = new Map<number, Map<number | string, ExpiresAt>>();
  for (const [c, exp] of cidrs) {
    if (c.v !== v) continue;
    let m = byPrefix.get(c.prefix);
    if (m === undefined) byPrefix.set(c.prefix, (m = new Map()));
    m.set(c.key, Math.max(exp, m.get(c.key) ?? -Infinity));
  }
  return { prefixes: [...byPrefix.keys()].sort((a, b) => b - a), byPrefix };
}

/**
 * The in-process copy of the Redis lists that the hot path reads. Every read is a Map lookup plus
 * an expiry comparison; expiry is enforced here from the TTL read at load, so it holds even while
 * the backend is unreachable.
 */
export class Mirror {
  private suspended = new Map<string, ExpiresAt>();
  /** Exact IPv4 blocks by dotted quad (what callers pass, so usually no parsing), IPv6 by hex expansion. */
  private blockedV4 = new Map<string, ExpiresAt>();
  private blockedV6 = new Map<string, ExpiresAt>();
  /** Raw key suffix -> parsed CIDR and expiry; the index below is rebuilt lazily from it. */
  private cidrs = new Map<string, [ParsedCidr, ExpiresAt]>();
  private risk = new Map<string, RiskEntry>();
  private v4: CidrIndex = { prefixes: [], byPrefix: new Map() };
  private v6: CidrIndex = { prefixes: [], byPrefix: new Map() };
  private cidrDirty = false;

  isSuspended(sub: string, nowMs: number): boolean {
    const exp = this.suspended.get(sub);
    return exp !== undefined && exp > nowMs;
  }

  isIpBlocked(ip: string, nowMs: number): boolean {
    if (!ip.includes(':')) {
      const exp = this.blockedV4.get(ip);
      if (exp !== undefined && exp > nowMs) return true;
      if (this.cidrs.size === 0) return false;
    }
    const parsed = parseIp(ip);
    if (parsed === undefined) return false;
    if (ip.includes(':')) {
      const exp = parsed.v === 4 ? this.blockedV4.get(formatV4(parsed.value)) : this.blockedV6.get(parsed.hex);
      if (exp !== undefined && exp > nowMs) return true;
      if (this.cidrs.size === 0) return false;
    }
    if (this.cidrDirty) this.rebuildCidrIndex();
    const index = parsed.v === 4 ? this.v4 : this.v6;
    for (const prefix of index.prefixes) {
      const e = index.byPrefix.get(prefix)?.get(networkKey(parsed, prefix));
      if (e !== undefined && e > nowMs) return true;
    }
    return false;
  }

  riskScore(sub: string, nowMs: number): number | undefined {
    const r = this.risk.get(sub);
    return r !== undefined && r.expiresAtMs > nowMs ? r.score : undefined;
  }

  setSuspended(sub: string, expiresAtMs: ExpiresAt | undefined): void {
    if (expiresAtMs === undefined) this.suspended.delete(sub);
    else this.suspended.set(sub, expiresAtMs);
  }

  setBlockedIp(ip: string, expiresAtMs: ExpiresAt | undefined): void {
    const p = parseIp(ip);
    // A key that is not an IP can never match a client address.
    if (p === undefined) return;
    const [map, key] = p.v === 4 ? [this.blockedV4, formatV4(p.value)] : [this.blockedV6, p.hex];
    if (expiresAtMs === undefined) map.delete(key);
    else map.set(key, expiresAtMs);
  }

  setBlockedCidr(cidr: string, expiresAtMs: ExpiresAt | undefined): void {
    if (expiresAtMs === undefined) {
      if (this.cidrs.delete(cidr)) this.cidrDirty = true;
      return;
    }
    const parsed = parseCidr(cidr);
    if (parsed === undefined) return;
    this.cidrs.set(cidr, [parsed, expiresAtMs]);
    this.cidrDirty = true;
  }

  setRisk(sub: string, entry: RiskEntry | undefined): void {
    if (entry === undefined) this.risk.delete(sub);
    else this.risk.set(sub, entry);
  }

  /** Swaps in a complete view read by a full resync. */
  replace(s: MirrorSnapshot): void {
    this.suspended = new Map(s.suspended);
    this.blockedV4 = new Map();
    this.blockedV6 = new Map();
    for (const [ip, exp] of s.blockedIps) this.setBlockedIp(ip, exp);
    this.cidrs = new Map();
    for (const [cidr, exp] of s.blockedCidrs) this.setBlockedCidr(cidr, exp);
    this.cidrDirty = true;
    this.risk = new Map(s.risk);
  }

  /** Drops expired entries so memory does not grow with keys nobody deletes. */
  sweep(nowMs: number): void {
    for (const m of [this.suspended, this.blockedV4, this.blockedV6]) for (const [k, exp] of m) if (exp <= nowMs) m.delete(k);
    for (const [k, [, exp]] of this.cidrs) if (exp <= nowMs) { this.cidrs.delete(k); this.cidrDirty = true; }
    for (const [k, r] of this.risk) if (r.expiresAtMs <= nowMs) this.risk.delete(k);
  }

  counts(): { suspended: number; blockedIps: number; blockedCidrs: number; risk: number } {
    return {
      suspended: this.suspended.size,
      blockedIps: this.blockedV4.size + this.blockedV6.size,
      blockedCidrs: this.cidrs.size,
      risk: this.risk.size,
    };
  }

  /** Unexpired entries for the live page, at most `limit` of each list (Map order: oldest write first). */
  list(nowMs: number, limit: number): StateListing {
    const take = <V>(m: Map<string, V>, exp: (v: V) => number, row: (k: string, v: V) => ListedEntry): ListedEntry[] => {
      const out: ListedEntry[] = [];
      for (const [k, v] of m) {
        if (exp(v) <= nowMs) continue;
        if (out.length >= limit) break;
        out.push(row(k, v));
      }
      return out;
    };
    const ttl = (exp: number) => (exp === Infinity ? null : Math.ceil((exp - nowMs) / 1000));
    const ips = [
      ...take(this.blockedV4, (e) => e, (k, e) => ({ id: k, ttl_s: ttl(e) })),
      ...take(this.blockedV6, (e) => e, (k, e) => ({ id: hexToV6(k), ttl_s: ttl(e) })),
    ].slice(0, limit);
    return {
      counts: this.counts(),
      suspended: take(this.suspended, (e) => e, (k, e) => ({ id: k, ttl_s: ttl(e) })),
      blocked_ips: ips,
      blocked_cidrs: take(this.cidrs, ([, e]) => e, (k, [, e]) => ({ id: k, ttl_s: ttl(e) })),
      risk: take(this.risk, (r) => r.expiresAtMs, (k, r) => ({ id: k, ttl_s: ttl(r.expiresAtMs), score: r.score })),
    };
  }

  private rebuildCidrIndex(): void {
    const all = [...this.cidrs.values()];
    this.v4 = buildIndex(all, 4);
    this.v6 = buildIndex(all, 6);
    this.cidrDirty = false;
  }
}
