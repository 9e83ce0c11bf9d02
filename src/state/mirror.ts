import { formatIp, formatV4, networkKey, parseCidr, parseIp, parseV4, type ParsedCidr, type ParsedIp } from '../ip.js';
import { IdTable, IpTable } from './mirror-tables.js';

/** Expiry time in ms since the epoch; Infinity for a key without TTL. */
export type ExpiresAt = number;

export interface RiskEntry {
  readonly score: number;
  readonly expiresAtMs: ExpiresAt;
}

/** A complete view read by a full resync (tests and small callers; a resync fills a builder). */
export interface MirrorSnapshot {
  readonly suspended: Map<string, ExpiresAt>;
  readonly blockedIps: Map<string, ExpiresAt>;
  readonly blockedCidrs: Map<string, ExpiresAt>;
  readonly risk: Map<string, RiskEntry>;
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

/** Where a full resync puts what it reads, entry by entry (expiry: local ms, Infinity for no TTL). */
export interface MirrorBuilder {
  addSuspended(sub: string, expiresAtMs: ExpiresAt): void;
  addBlockedIp(ip: string, expiresAtMs: ExpiresAt): void;
  addBlockedCidr(cidr: string, expiresAtMs: ExpiresAt): void;
  addRisk(sub: string, score: number, expiresAtMs: ExpiresAt): void;
}

/** What the stores need of a mirror; Mirror is the one the product uses. */
export interface StateMirror {
  isSuspended(sub: string, nowMs: number): boolean;
  isIpBlocked(ip: string, nowMs: number): boolean;
  riskScore(sub: string, nowMs: number): number | undefined;
  setSuspended(sub: string, expiresAtMs: ExpiresAt | undefined): void;
  setBlockedIp(ip: string, expiresAtMs: ExpiresAt | undefined): void;
  setBlockedCidr(cidr: string, expiresAtMs: ExpiresAt | undefined): void;
  setRisk(sub: string, entry: RiskEntry | undefined): void;
  /** An empty builder for a full resync; `replace` swaps what it was given in at once. */
  builder(): MirrorBuilder;
  replace(from: MirrorBuilder): void;
  sweep(nowMs: number): void;
  counts(): { suspended: number; blockedIps: number; blockedCidrs: number; risk: number };
  list(nowMs: number, limit: number): StateListing;
}

/** Eight hex digits of the (lower-case) expansion from `at` as a uint32, without slicing. */
function hexWord(hex: string, at: number): number {
  let x = 0;
  for (let i = at; i < at + 8; i++) {
    const c = hex.charCodeAt(i);
    x = (x << 4) | (c <= 57 ? c - 48 : c - 87);
  }
  return x >>> 0;
}

/** IPv6 hex expansion -> the four 32-bit words the exact-block table is keyed by. */
function v6Words(hex: string): [number, number, number, number] {
  return [hexWord(hex, 0), hexWord(hex, 8), hexWord(hex, 16), hexWord(hex, 24)];
}

function wordsToHex(w: Uint32Array): string {
  let hex = '';
  for (const x of w) hex += x.toString(16).padStart(8, '0');
  return hex;
}

/** Every list of one mirror: swapped as a whole by a resync. */
class Lists implements MirrorBuilder {
  readonly suspended = new IdTable(false);
  readonly risk = new IdTable(true);
  /** Exact IPv4 blocks by uint32, IPv6 by four words (a mapped IPv6 address is IPv4). */
  readonly v4 = new IpTable(1);
  readonly v6 = new IpTable(4);
  /** Raw key suffix -> parsed CIDR and expiry; the mirror's per-prefix index is rebuilt lazily from it. */
  readonly cidrs = new Map<string, [ParsedCidr, ExpiresAt]>();

  addSuspended(sub: string, expiresAtMs: ExpiresAt): void {
    this.suspended.set(sub, expiresAtMs);
  }

  addRisk(sub: string, score: number, expiresAtMs: ExpiresAt): void {
    this.risk.set(sub, expiresAtMs, score);
  }

  /**
   * Addresses listed under more than one spelling (`1.2.3.4` and `::ffff:1.2.3.4`, `2001:DB8::1`
   * and `2001:db8::1`): Redis holds a key per spelling, the table one slot per address, so for
   * these the expiry of every spelling is kept and the slot holds the latest. Otherwise the entry
   * written last would win, and deleting one spelling, or a shorter TTL on it, would unblock an
   * address that another spelling still blocks. Empty unless a key is written in a form other
   * than the canonical one, so the common path never touches it.
   */
  readonly spellings = new Map<string, Map<string, ExpiresAt>>();

  addBlockedIp(ip: string, expiresAtMs: ExpiresAt | undefined): void {
    // Dotted quads (most of a large list) without the parsed-address object: a resync of a
    // million entries makes less garbage on the way. A strict dotted quad is canonical text.
    const quad = parseV4(ip);
    if (quad !== undefined) {
      if (this.spellings.size === 0 || !this.spellings.has(`4:${quad}`)) this.setV4(quad, expiresAtMs);
      else this.spelled(`4:${quad}`, ip, ip, expiresAtMs, this.v4.has(quad) ? this.v4.get(quad) : undefined, (e) => this.setV4(quad, e));
      return;
    }
    const p = parseIp(ip);
    // A key that is not an IP can never match a client address.
    if (p === undefined) return;
    const canonical = formatIp(p);
    if (p.v === 4) {
      const key = `4:${p.value}`;
      if (canonical === ip && !this.spellings.has(key)) this.setV4(p.value, expiresAtMs);
      else this.spelled(key, ip, canonical, expiresAtMs, this.v4.has(p.value) ? this.v4.get(p.value) : undefined, (e) => this.setV4(p.value, e));
      return;
    }
    const [a, b, c, d] = v6Words(p.hex);
    const setV6 = (e: ExpiresAt | undefined) => (e === undefined ? this.v6.delete(a, b, c, d) : this.v6.set(e, a, b, c, d));
    const key = `6:${p.hex}`;
    if (canonical === ip && !this.spellings.has(key)) setV6(expiresAtMs);
    else this.spelled(key, ip, canonical, expiresAtMs, this.v6.has(a, b, c, d) ? this.v6.get(a, b, c, d) : undefined, setV6);
  }

  private setV4(quad: number, expiresAtMs: ExpiresAt | undefined): void {
    if (expiresAtMs === undefined) this.v4.delete(quad);
    else this.v4.set(expiresAtMs, quad);
  }

  /** `current`: the slot's expiry (undefined when absent), which before any other spelling was the canonical one's. */
  private spelled(key: string, ip: string, canonical: string, expiresAtMs: ExpiresAt | undefined, current: ExpiresAt | undefined, slot: (e: ExpiresAt | undefined) => void): void {
    let m = this.spellings.get(key);
    if (m === undefined) {
      m = new Map();
      if (current !== undefined) m.set(canonical, current);
      this.spellings.set(key, m);
    }
    if (expiresAtMs === undefined) m.delete(ip);
    else m.set(ip, expiresAtMs);
    let latest: ExpiresAt | undefined;
    for (const e of m.values()) latest = latest === undefined || e > latest ? e : latest;
    slot(latest);
    if (m.size === 0 || (m.size === 1 && m.has(canonical))) this.spellings.delete(key);
  }

  sweepSpellings(nowMs: number): void {
    for (const [key, m] of this.spellings) {
      for (const [ip, e] of m) if (e <= nowMs) m.delete(ip);
      // One spelling left is kept: if it is not the canonical one, a later canonical write must
      // still see it.
      if (m.size === 0) this.spellings.delete(key);
    }
  }

  /** True when the CIDR set changed. */
  addBlockedCidr(cidr: string, expiresAtMs: ExpiresAt | undefined): boolean {
    if (expiresAtMs === undefined) return this.cidrs.delete(cidr);
    const parsed = parseCidr(cidr);
    if (parsed === undefined) return false;
    this.cidrs.set(cidr, [parsed, expiresAtMs]);
    return true;
  }
}

/**
 * The in-process copy of the Redis lists that the hot path reads. A user lookup is one Map.get
 * plus a typed-array read; an IPv4 lookup parses the dotted quad and probes a typed-array hash
 * (bench/mirror-lookup.ts). Expiry is enforced here from the TTL read at load, so it holds even
 * while the backend is unreachable.
 */
export class Mirror implements StateMirror {
  private l = new Lists();
  private v4: CidrIndex = { prefixes: [], byPrefix: new Map() };
  private v6: CidrIndex = { prefixes: [], byPrefix: new Map() };
  private cidrDirty = false;

  isSuspended(sub: string, nowMs: number): boolean {
    return this.l.suspended.expiry(sub) > nowMs;
  }

  isIpBlocked(ip: string, nowMs: number): boolean {
    const value = parseV4(ip);
    if (value !== undefined) {
      if (this.l.v4.get1(value) > nowMs) return true;
      return this.l.cidrs.size !== 0 && this.inCidr({ v: 4, value }, nowMs);
    }
    if (!ip.includes(':')) return false;
    const parsed = parseIp(ip);
    if (parsed === undefined) return false;
    if (parsed.v === 4) {
      if (this.l.v4.get1(parsed.value) > nowMs) return true;
    } else {
      const h = parsed.hex;
      if (this.l.v6.get(hexWord(h, 0), hexWord(h, 8), hexWord(h, 16), hexWord(h, 24)) > nowMs) return true;
    }
    return this.l.cidrs.size !== 0 && this.inCidr(parsed, nowMs);
  }

  riskScore(sub: string, nowMs: number): number | undefined {
    return this.l.risk.scoreAt(sub, nowMs);
  }

  setSuspended(sub: string, expiresAtMs: ExpiresAt | undefined): void {
    if (expiresAtMs === undefined) this.l.suspended.delete(sub);
    else this.l.suspended.set(sub, expiresAtMs);
  }

  setBlockedIp(ip: string, expiresAtMs: ExpiresAt | undefined): void {
    this.l.addBlockedIp(ip, expiresAtMs);
  }

  setBlockedCidr(cidr: string, expiresAtMs: ExpiresAt | undefined): void {
    if (this.l.addBlockedCidr(cidr, expiresAtMs)) this.cidrDirty = true;
  }

  setRisk(sub: string, entry: RiskEntry | undefined): void {
    if (entry === undefined) this.l.risk.delete(sub);
    else this.l.risk.set(sub, entry.expiresAtMs, entry.score);
  }

  builder(): MirrorBuilder {
    return new Lists();
  }

  /**
   * Swaps in a complete view read by a full resync: a builder from `builder()` (filled straight
   * from the snapshot pages, so a million entries are never held twice in another form) or a
   * snapshot of Maps.
   */
  replace(from: MirrorBuilder | MirrorSnapshot): void {
    let lists: Lists;
    if (from instanceof Lists) lists = from;
    else if ('addSuspended' in from) throw new Error('Mirror.replace: a builder from another mirror');
    else {
      lists = new Lists();
      for (const [sub, exp] of from.suspended) lists.addSuspended(sub, exp);
      for (const [ip, exp] of from.blockedIps) lists.addBlockedIp(ip, exp);
      for (const [cidr, exp] of from.blockedCidrs) lists.addBlockedCidr(cidr, exp);
      for (const [sub, r] of from.risk) lists.addRisk(sub, r.score, r.expiresAtMs);
    }
    this.l = lists;
    this.cidrDirty = true;
  }

  /** Drops expired entries so memory does not grow with keys nobody deletes. */
  sweep(nowMs: number): void {
    const l = this.l;
    l.suspended.sweep(nowMs);
    l.risk.sweep(nowMs);
    l.v4.sweep(nowMs);
    l.v6.sweep(nowMs);
    l.sweepSpellings(nowMs);
    for (const [k, [, exp]] of l.cidrs) {
      if (exp > nowMs) continue;
      l.cidrs.delete(k);
      this.cidrDirty = true;
    }
  }

  counts(): { suspended: number; blockedIps: number; blockedCidrs: number; risk: number } {
    const l = this.l;
    return { suspended: l.suspended.size, blockedIps: l.v4.size + l.v6.size, blockedCidrs: l.cidrs.size, risk: l.risk.size };
  }

  /**
   * Unexpired entries for the live page, at most `limit` of each list: users and CIDRs oldest
   * write first, IPs in table order (IPv4 before IPv6).
   */
  list(nowMs: number, limit: number): StateListing {
    const ttl = (exp: number) => (exp === Infinity ? null : Math.ceil((exp - nowMs) / 1000));
    const take = <T>(rows: Iterable<T>, exp: (r: T) => number, row: (r: T) => ListedEntry, out: ListedEntry[] = []): ListedEntry[] => {
      for (const r of rows) {
        if (out.length >= limit) break;
        if (exp(r) > nowMs) out.push(row(r));
      }
      return out;
    };
    const l = this.l;
    const ips = take(l.v4.entries(), ([, e]) => e, ([k, e]) => ({ id: formatV4(k[0] as number), ttl_s: ttl(e) }));
    take(l.v6.entries(), ([, e]) => e, ([k, e]) => ({ id: hexToV6(wordsToHex(k)), ttl_s: ttl(e) }), ips);
    return {
      counts: this.counts(),
      suspended: take(l.suspended.entries(), ([, e]) => e, ([id, e]) => ({ id, ttl_s: ttl(e) })),
      blocked_ips: ips,
      blocked_cidrs: take(l.cidrs, ([, [, e]]) => e, ([id, [, e]]) => ({ id, ttl_s: ttl(e) })),
      risk: take(l.risk.entries(), ([, e]) => e, ([id, e, score]) => ({ id, ttl_s: ttl(e), score })),
    };
  }

  private inCidr(ip: ParsedIp, nowMs: number): boolean {
    if (this.cidrDirty) this.rebuildCidrIndex();
    const index = ip.v === 4 ? this.v4 : this.v6;
    for (const prefix of index.prefixes) {
      const e = index.byPrefix.get(prefix)?.get(networkKey(ip, prefix));
      if (e !== undefined && e > nowMs) return true;
    }
    return false;
  }

  private rebuildCidrIndex(): void {
    const all = [...this.l.cidrs.values()];
    this.v4 = buildIndex(all, 4);
    this.v6 = buildIndex(all, 6);
    this.cidrDirty = false;
  }
}
