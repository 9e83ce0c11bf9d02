import { canonicalIp, maskIp, parseCidr, parseIp, type ParsedCidr } from './ip.js';

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

/** Per-prefix-length hash of network -> expiry: a lookup is one mask + Map.get per prefix length in use. */
interface CidrIndex {
  readonly prefixes: number[];
  readonly byPrefix: Map<number, Map<number | bigint, ExpiresAt>>;
}

function buildIndex(cidrs: Iterable<[ParsedCidr, ExpiresAt]>, v: 4 | 6): CidrIndex {
  const byPrefix = new Map<number, Map<number | bigint, ExpiresAt>>();
  for (const [c, exp] of cidrs) {
    if (c.v !== v) continue;
    let m = byPrefix.get(c.prefix);
    if (m === undefined) byPrefix.set(c.prefix, (m = new Map()));
    m.set(c.network, Math.max(exp, m.get(c.network) ?? -Infinity));
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
  private blockedIps = new Map<string, ExpiresAt>();
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
    let exp = this.blockedIps.get(ip);
    if (exp === undefined && (ip.includes(':') || ip.length > 15)) {
      const canonical = canonicalIp(ip);
      if (canonical !== undefined) exp = this.blockedIps.get(canonical);
    }
    if (exp !== undefined && exp > nowMs) return true;
    if (this.cidrs.size === 0) return false;
    if (this.cidrDirty) this.rebuildCidrIndex();
    const parsed = parseIp(ip);
    if (parsed === undefined) return false;
    const index = parsed.v === 4 ? this.v4 : this.v6;
    for (const prefix of index.prefixes) {
      const e = index.byPrefix.get(prefix)?.get(maskIp(parsed, prefix));
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
    const key = canonicalIp(ip) ?? ip;
    if (expiresAtMs === undefined) this.blockedIps.delete(key);
    else this.blockedIps.set(key, expiresAtMs);
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
    this.blockedIps = new Map();
    for (const [ip, exp] of s.blockedIps) this.setBlockedIp(ip, exp);
    this.cidrs = new Map();
    for (const [cidr, exp] of s.blockedCidrs) this.setBlockedCidr(cidr, exp);
    this.cidrDirty = true;
    this.risk = new Map(s.risk);
  }

  /** Drops expired entries so memory does not grow with keys nobody deletes. */
  sweep(nowMs: number): void {
    for (const m of [this.suspended, this.blockedIps]) for (const [k, exp] of m) if (exp <= nowMs) m.delete(k);
    for (const [k, [, exp]] of this.cidrs) if (exp <= nowMs) { this.cidrs.delete(k); this.cidrDirty = true; }
    for (const [k, r] of this.risk) if (r.expiresAtMs <= nowMs) this.risk.delete(k);
  }

  counts(): { suspended: number; blockedIps: number; blockedCidrs: number; risk: number } {
    return {
      suspended: this.suspended.size,
      blockedIps: this.blockedIps.size,
      blockedCidrs: this.cidrs.size,
      risk: this.risk.size,
    };
  }

  private rebuildCidrIndex(): void {
    const all = [...this.cidrs.values()];
    this.v4 = buildIndex(all, 4);
    this.v6 = buildIndex(all, 6);
    this.cidrDirty = false;
  }
}
