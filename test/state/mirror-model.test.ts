import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonicalIp, networkKey, parseCidr, parseIp, parseV4, type ParsedCidr } from '../../src/ip.js';
import { Mirror, type RiskEntry } from '../../src/state/mirror.js';
import { IpTable } from '../../src/state/mirror-tables.js';

/**
 * The compact mirror against the simplest model that is obviously right: Maps keyed by canonical
 * text, CIDR membership by networkKey, on random sequences of writes, deletes, sweeps, full
 * replaces and lookups. Few distinct keys, so sequences hit the same slots, delete and re-add.
 */
const USERS = ['alice', 'bob', 'carol', 'd', 'é-unicode', 'user-1', 'user-2', 'x'.repeat(40)];
/** Every IPv4 key under several spellings a Redis key or a client could use. */
const V4 = [0, 1, 0x0a000001, 0x0a000002, 0xc0000201, 0xffffffff, 0x7f000001, 0x0a0000ff];
const v4Texts = (n: number) => {
  const q = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  return [q, `::ffff:${q}`, `::FFFF:${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`];
};
const V6 = ['2001:db8::1', '2001:DB8:0:0:0:0:0:1', '2001:db8::2', 'fe80::1%eth0', '::', '::1', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe'];
const IPS = [...V4.flatMap(v4Texts), ...V6, 'not-an-ip', '1.2.3', '01.2.3.4'];
const CIDRS = ['10.0.0.0/8', '10.0.0.0/24', '10.0.0.2/31', '0.0.0.0/0', '::ffff:10.0.0.0/104', '2001:db8::/32', '2001:db8::/127', '::/0', 'fe80::/10', '192.0.2.1/32', 'bad/8'];
const EXPIRIES = [Infinity, 0, 5, 10, 20, 50, 100];

type Op =
  | { op: 'suspend' | 'risk'; user: string; exp: number | undefined; score: number }
  | { op: 'ip'; ip: string; exp: number | undefined }
  | { op: 'cidr'; cidr: string; exp: number | undefined }
  | { op: 'sweep'; now: number }
  | { op: 'replace'; users: [string, number][]; ips: [string, number][]; cidrs: [string, number][]; risk: [string, number, number][] }
  | { op: 'probe'; now: number; user: string; ip: string };

const exp = fc.constantFrom(...EXPIRIES);
const maybeExp = fc.option(exp, { nil: undefined, freq: 4 });
const user = fc.constantFrom(...USERS);
const ip = fc.constantFrom(...IPS);
const cidr = fc.constantFrom(...CIDRS);
const now = fc.integer({ min: 0, max: 120 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constantFrom('suspend' as const, 'risk' as const), user, exp: maybeExp, score: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ op: fc.constant('ip' as const), ip, exp: maybeExp }),
  fc.record({ op: fc.constant('cidr' as const), cidr, exp: maybeExp }),
  fc.record({ op: fc.constant('sweep' as const), now }),
  fc.record({
    op: fc.constant('replace' as const),
    users: fc.array(fc.tuple(user, exp), { maxLength: 6 }),
    ips: fc.array(fc.tuple(ip, exp), { maxLength: 12 }),
    cidrs: fc.array(fc.tuple(cidr, exp), { maxLength: 4 }),
    risk: fc.array(fc.tuple(user, fc.double({ min: 0, max: 1, noNaN: true }), exp), { maxLength: 6 }),
  }),
  fc.record({ op: fc.constant('probe' as const), now, user, ip }),
  fc.record({ op: fc.constant('probe' as const), now, user, ip: fc.oneof(fc.ipV4(), fc.ipV6()) }),
);

class Model {
  suspended = new Map<string, number>();
  ips = new Map<string, number>();
  cidrs = new Map<string, [ParsedCidr, number]>();
  risk = new Map<string, RiskEntry>();

  /** Per address (canonical text): the latest expiry of any of its spellings. */
  byAddress(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [spelling, e] of this.ips) {
      const key = canonicalIp(spelling) as string;
      out.set(key, Math.max(out.get(key) ?? -Infinity, e));
    }
    return out;
  }

  /** By spelling, as Redis holds them: an address is blocked while any of its spellings is. */
  setIp(text: string, e: number | undefined): void {
    if (canonicalIp(text) === undefined) return;
    if (e === undefined) this.ips.delete(text);
    else this.ips.set(text, e);
  }

  setCidr(text: string, e: number | undefined): void {
    if (e === undefined) {
      this.cidrs.delete(text);
      return;
    }
    const c = parseCidr(text);
    if (c !== undefined) this.cidrs.set(text, [c, e]);
  }

  blocked(text: string, t: number): boolean {
    const key = canonicalIp(text);
    if (key === undefined) return false;
    for (const [spelling, e] of this.ips) if (e > t && canonicalIp(spelling) === key) return true;
    const p = parseIp(text)!;
    for (const [c, e] of this.cidrs.values()) if (c.v === p.v && e > t && networkKey(p, c.prefix) === c.key) return true;
    return false;
  }

  sweep(t: number): void {
    for (const m of [this.suspended, this.ips]) for (const [k, e] of m) if (e <= t) m.delete(k);
    for (const [k, [, e]] of this.cidrs) if (e <= t) this.cidrs.delete(k);
    for (const [k, r] of this.risk) if (r.expiresAtMs <= t) this.risk.delete(k);
  }
}

function apply(m: Mirror, model: Model, o: Op): void {
  switch (o.op) {
    case 'suspend':
      m.setSuspended(o.user, o.exp);
      if (o.exp === undefined) model.suspended.delete(o.user);
      else model.suspended.set(o.user, o.exp);
      return;
    case 'risk': {
      const entry = o.exp === undefined ? undefined : { score: o.score, expiresAtMs: o.exp };
      m.setRisk(o.user, entry);
      if (entry === undefined) model.risk.delete(o.user);
      else model.risk.set(o.user, entry);
      return;
    }
    case 'ip':
      m.setBlockedIp(o.ip, o.exp);
      model.setIp(o.ip, o.exp);
      return;
    case 'cidr':
      m.setBlockedCidr(o.cidr, o.exp);
      model.setCidr(o.cidr, o.exp);
      return;
    case 'sweep':
      m.sweep(o.now);
      model.sweep(o.now);
      return;
    case 'replace': {
      const b = m.builder();
      const fresh = new Model();
      for (const [u, e] of o.users) (b.addSuspended(u, e), fresh.suspended.set(u, e));
      for (const [i, e] of o.ips) (b.addBlockedIp(i, e), fresh.setIp(i, e));
      for (const [c, e] of o.cidrs) (b.addBlockedCidr(c, e), fresh.setCidr(c, e));
      for (const [u, s, e] of o.risk) (b.addRisk(u, s, e), fresh.risk.set(u, { score: s, expiresAtMs: e }));
      m.replace(b);
      Object.assign(model, fresh);
      return;
    }
    case 'probe':
      expect(m.isSuspended(o.user, o.now), `suspended ${o.user} at ${o.now}`).toBe((model.suspended.get(o.user) ?? -Infinity) > o.now);
      expect(m.isIpBlocked(o.ip, o.now), `blocked ${o.ip} at ${o.now}`).toBe(model.blocked(o.ip, o.now));
      {
        const r = model.risk.get(o.user);
        expect(m.riskScore(o.user, o.now)).toBe(r !== undefined && r.expiresAtMs > o.now ? r.score : undefined);
      }
      return;
  }
}

const ttl = (e: number, t: number) => (e === Infinity ? null : Math.ceil((e - t) / 1000));
const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

describe('compact Mirror against a Map model (property)', () => {
  it('agrees on lookups, counts and listings over random operation sequences', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), now, (ops, listAt) => {
        const m = new Mirror();
        const model = new Model();
        for (const o of ops) {
          apply(m, model, o);
          expect(m.counts()).toEqual({ suspended: model.suspended.size, blockedIps: model.byAddress().size, blockedCidrs: model.cidrs.size, risk: model.risk.size });
        }
        // Every key, under every spelling, after the sequence.
        for (const t of [0, 7, 49, 50, 99, 100, 1e15]) {
          for (const u of USERS) apply(m, model, { op: 'probe', now: t, user: u, ip: '0.0.0.0' });
          for (const i of IPS) expect(m.isIpBlocked(i, t), `${i} at ${t}`).toBe(model.blocked(i, t));
        }
        const listed = m.list(listAt, 1000);
        const live = <V>(rows: Iterable<[string, V]>, e: (v: V) => number) => [...rows].filter(([, v]) => e(v) > listAt);
        expect([...listed.suspended].sort(byId)).toEqual(live(model.suspended, (e) => e).map(([id, e]) => ({ id, ttl_s: ttl(e, listAt) })).sort(byId));
        expect([...listed.blocked_ips].sort(byId)).toEqual(live(model.byAddress(), (e) => e).map(([id, e]) => ({ id: listedIpText(id), ttl_s: ttl(e, listAt) })).sort(byId));
        expect([...listed.blocked_cidrs].sort(byId)).toEqual(live(model.cidrs, ([, e]) => e).map(([id, [, e]]) => ({ id, ttl_s: ttl(e, listAt) })).sort(byId));
        expect([...listed.risk].sort(byId)).toEqual(live(model.risk, (r) => r.expiresAtMs).map(([id, r]) => ({ id, ttl_s: ttl(r.expiresAtMs, listAt), score: r.score })).sort(byId));
        // Users keep Map order: oldest write first, as before.
        expect(listed.suspended.map((r) => r.id)).toEqual(live(model.suspended, (e) => e).map(([id]) => id));
      }),
      { numRuns: 400 },
    );
  });

  it('keeps exact tables right through growth, deletes and shrinking (many keys)', () => {
    const m = new Mirror();
    const alive = new Map<number, number>();
    let seed = 1;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const q = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 5000; i++) {
        const n = Math.floor(rnd() * 20_000) * 65_537;
        if (rnd() < 0.3) {
          m.setBlockedIp(q(n >>> 0), undefined);
          alive.delete(n >>> 0);
        } else {
          const e = 1 + Math.floor(rnd() * 100);
          m.setBlockedIp(q(n >>> 0), e);
          alive.set(n >>> 0, e);
        }
      }
      const t = round * 20;
      m.sweep(t);
      for (const [k, e] of alive) if (e <= t) alive.delete(k);
      expect(m.counts().blockedIps).toBe(alive.size);
      for (const [k, e] of alive) expect(m.isIpBlocked(q(k), e - 1)).toBe(true);
      for (const [k, e] of alive) expect(m.isIpBlocked(q(k), e)).toBe(false);
    }
    m.sweep(Infinity);
    expect(m.counts().blockedIps).toBe(0);
    expect(m.isIpBlocked('0.0.0.0', 0)).toBe(false);
  });

  it('parses dotted quads exactly as node:net and the old char-by-char reader would', () => {
    const reference = (s: string) => {
      const m = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/.exec(s);
      if (m === null) return undefined;
      const o = m.slice(1).map(Number);
      return o.some((x) => x > 255) ? undefined : ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
    };
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV4Extended(), fc.stringMatching(/^[0-9.]{0,16}$/), fc.string({ maxLength: 16 })), (s) => {
        expect(parseV4(s), s).toBe(reference(s));
      }),
      { numRuns: 5000 },
    );
  });
});

/** The listing shows IPv6 as the uncompressed groups the mirror keeps (hexToV6), IPv4 as the dotted quad. */
function listedIpText(canonical: string): string {
  const p = parseIp(canonical)!;
  if (p.v === 4) return canonical;
  return (p.hex.match(/.{4}/g) ?? []).map((g) => g.replace(/^0+(?=.)/, '')).join(':');
}

describe('the IP tables against chosen addresses', () => {
  /** The inverse of an odd number mod 2^32 (Newton's iteration). */
  const inverse = (k: number) => {
    let x = k;
    for (let i = 0; i < 5; i++) x = Math.imul(x, 2 - Math.imul(k, x));
    return x >>> 0;
  };

  it('keeps addresses an attacker picks in its own /64 from piling into one run of slots', () => {
    // Auto-remediation lists whatever addresses fail authentication, so an attacker chooses the
    // keys. These 5,000 all had the same hash under the multiply-xor the table first used
    // (a ^ b*K2 ^ c*K3 ^ d*K4): c is solved for each d so that c*K3 ^ d*K4 stays constant.
    const K3 = 0xc2b2ae35;
    const K4 = 0x27d4eb2f;
    const inv = inverse(K3);
    const table = new IpTable(4);
    const n = 5_000;
    for (let d = 1; d <= n; d++) {
      const c = Math.imul(inv, (0x5eed ^ Math.imul(d, K4)) >>> 0) >>> 0;
      expect(Math.imul(c, K3) ^ Math.imul(d, K4)).toBe(0x5eed);
      table.set(Infinity, 0x20010db8, 0, c, d);
    }
    expect(table.size).toBe(n);
    // Spread at random, the longest run at this load is a few dozen slots; all in one would be 5,000.
    expect(table.longestRun()).toBeLessThan(200);
    for (let d = 1; d <= n; d += 499) expect(table.get(0x20010db8, 0, Math.imul(inv, (0x5eed ^ Math.imul(d, K4)) >>> 0) >>> 0, d)).toBe(Infinity);
  });

  it('keeps a dense IPv4 range (a /19 an attacker holds) spread too', () => {
    const table = new IpTable(1);
    for (let i = 0; i < 8192; i++) table.set(Infinity, (0xc6336400 + i) >>> 0);
    expect(table.longestRun()).toBeLessThan(200);
    expect(table.get1((0xc6336400 + 77) >>> 0)).toBe(Infinity);
  });
});
