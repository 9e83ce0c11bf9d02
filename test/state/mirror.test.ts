import { describe, expect, it } from 'vitest';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { canonicalIp, parseCidr, parseIp } from '../../src/ip.js';
import { Mirror } from '../../src/state/mirror.js';
import { parseBlockTarget, StateInputError } from '../../src/state/keys.js';

describe('IP and CIDR parsing', () => {
  it('canonicalises IPv6 (RFC 5952) and reduces IPv4-mapped addresses to IPv4', () => {
    expect(canonicalIp('2001:0DB8:0000:0000:0001:0000:0000:0001')).toBe('2001:db8::1:0:0:1');
    expect(canonicalIp('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(canonicalIp('::FFFF:c000:0201')).toBe('192.0.2.1');
    expect(canonicalIp('::')).toBe('::');
    expect(canonicalIp('fe80::1%eth0')).toBe('fe80::1');
    for (const bad of ['', '1.2.3', '256.1.1.1', '1.2.3.4.5', '01.2.3.4', 'gg::1', '1:2:3:4:5:6:7:8:9', ' 1.2.3.4', '1..2.3', '1.2.3.4.', ':::', '1::2::3', '12345::', '::1.2.3', '1:2:3:4:5:6:7::8:9', 'fe80::1%']) {
      expect(canonicalIp(bad), bad).toBeUndefined();
    }
  });

  it('parses CIDRs and flags host bits', () => {
    expect(parseCidr('10.0.0.0/8')).toMatchObject({ v: 4, prefix: 8, hostBitsSet: false, canonical: '10.0.0.0/8' });
    expect(parseCidr('10.1.2.3/8')).toMatchObject({ hostBitsSet: true, canonical: '10.0.0.0/8' });
    expect(parseCidr('2001:DB8::/32')).toMatchObject({ v: 6, canonical: '2001:db8::/32' });
    expect(parseCidr('::ffff:10.0.0.0/104')).toMatchObject({ v: 4, prefix: 8, canonical: '10.0.0.0/8' });
    expect(parseCidr('0.0.0.0/0')).toMatchObject({ prefix: 0, canonical: '0.0.0.0/0' });
    for (const bad of ['10.0.0.0/33', '10.0.0.0/', '/8', '10.0.0/8', '::/129', '10.0.0.0/-1', '10.0.0.0/8/8', 'x/8', '10.0.0.0/ 8']) {
      expect(parseCidr(bad)).toBeUndefined();
    }
  });

  it('admin targets: IP or CIDR, canonical, host bits rejected', () => {
    expect(parseBlockTarget('2001:DB8::1')).toEqual({ kind: 'blocked_ip', id: '2001:db8::1' });
    expect(parseBlockTarget('10.0.0.0/8')).toEqual({ kind: 'blocked_cidr', id: '10.0.0.0/8' });
    expect(() => parseBlockTarget('10.1.0.0/8')).toThrow(/did you mean 10.0.0.0\/8/);
    expect(() => parseBlockTarget('example.com')).toThrow(StateInputError);
  });

  it('parses every address node:net accepts, to the same value (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.string({ maxLength: 20 })), (text) => {
        const ok = isIP(text) !== 0;
        expect(parseIp(text) !== undefined, text).toBe(ok);
      }),
      { numRuns: 2000 },
    );
  });

  it('CIDR membership agrees with a range check (IPv4, property)', () => {
    const m = new Mirror();
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), fc.ipV4(), (net, prefix, probe) => {
        const c = parseCidr(`${net}/${prefix}`);
        if (c === undefined) return;
        m.replace({ suspended: new Map(), blockedIps: new Map(), blockedCidrs: new Map([[c.canonical, Infinity]]), risk: new Map() });
        const p = parseIp(probe);
        if (p?.v !== 4) return;
        const size = 2 ** (32 - prefix);
        const inside = p.value >= (c.key as number) && p.value < (c.key as number) + size;
        expect(m.isIpBlocked(probe, 0)).toBe(inside);
      }),
    );
  });

  it('CIDR membership agrees with a range check (IPv6, property)', () => {
    const m = new Mirror();
    fc.assert(
      fc.property(fc.ipV6(), fc.integer({ min: 0, max: 128 }), fc.ipV6(), (net, prefix, probe) => {
        const c = parseCidr(`${net}/${prefix}`);
        const p = parseIp(probe);
        if (c === undefined || c.v !== 6 || p?.v !== 6) return;
        m.replace({ suspended: new Map(), blockedIps: new Map(), blockedCidrs: new Map([[c.canonical, Infinity]]), risk: new Map() });
        const size = 1n << BigInt(128 - prefix);
        const value = BigInt(`0x${p.hex}`);
        const network = BigInt(`0x${(parseIp(c.canonical.split('/')[0] as string) as { hex: string }).hex}`);
        const inside = value >= network && value < network + size;
        expect(m.isIpBlocked(probe, 0)).toBe(inside);
      }),
    );
  });
});

describe('Mirror', () => {
  it('honours expiry and keeps the longest of overlapping CIDR blocks', () => {
    const m = new Mirror();
    m.setSuspended('bob', 1000);
    expect(m.isSuspended('bob', 999)).toBe(true);
    expect(m.isSuspended('bob', 1000)).toBe(false);
    m.setBlockedCidr('10.0.0.0/8', 1000);
    m.setBlockedCidr('10.1.2.3/8', 5000);
    m.setBlockedCidr('10.5.0.0/16', 2000);
    expect(m.isIpBlocked('10.5.1.1', 4000)).toBe(true);
    m.setBlockedCidr('10.1.2.3/8', undefined);
    expect(m.isIpBlocked('10.5.1.1', 1500)).toBe(true);
    expect(m.isIpBlocked('10.6.1.1', 1500)).toBe(false);
    m.setRisk('eve', { score: 0.4, expiresAtMs: Infinity });
    expect(m.riskScore('eve', 1e15)).toBe(0.4);
    m.sweep(10_000);
    expect(m.counts()).toEqual({ suspended: 0, blockedIps: 0, blockedCidrs: 0, risk: 1 });
  });

  it('ignores malformed CIDR keys and never matches garbage IPs', () => {
    const m = new Mirror();
    m.setBlockedCidr('not/a/cidr', Infinity);
    m.setBlockedCidr('0.0.0.0/0', Infinity);
    expect(m.isIpBlocked('203.0.113.1', 0)).toBe(true);
    expect(m.isIpBlocked('not-an-ip', 0)).toBe(false);
    expect(m.isIpBlocked('2001:db8::1', 0)).toBe(false);
  });
});
