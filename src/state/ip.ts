import { isIPv4, isIPv6 } from 'node:net';

/**
 * IP and CIDR parsing for block lists. IPv4 is kept as a number (exact in a double), IPv6 as a
 * bigint; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is treated as the IPv4 address so a
 * dual-stack listener cannot be used to step around an IPv4 block.
 */
export type ParsedIp = { readonly v: 4; readonly value: number } | { readonly v: 6; readonly value: bigint };
export interface ParsedCidr {
  readonly v: 4 | 6;
  /** Network address with host bits cleared. */
  readonly network: number | bigint;
  readonly prefix: number;
  /** True when the text had host bits set (10.1.2.3/8): accepted when reading, rejected by the admin CLI. */
  readonly hostBitsSet: boolean;
  /** RFC 5952 text of the network: the key suffix writers use. */
  readonly canonical: string;
}

function v4ToNumber(ip: string): number {
  const p = ip.split('.');
  return ((Number(p[0]) << 24) >>> 0) + (Number(p[1]) << 16) + (Number(p[2]) << 8) + Number(p[3]);
}

function numberToV4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function v6ToBigInt(ip: string): bigint {
  let text = ip;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // An embedded dotted quad occupies the last two groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const n = v4ToNumber(tail);
    text = `${text.slice(0, lastColon + 1)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const halves = text.split('::');
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const groups = [...head, ...Array<string>(8 - head.length - rest.length).fill('0'), ...rest];
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(parseInt(g, 16));
  return value;
}

const LOW32 = 0xffffffffn;

/** Parses an IP address; undefined when it is not one. */
export function parseIp(ip: string): ParsedIp | undefined {
  if (isIPv4(ip)) return { v: 4, value: v4ToNumber(ip) };
  if (!isIPv6(ip)) return undefined;
  const value = v6ToBigInt(ip);
  if (value >> 32n === 0xffffn) return { v: 4, value: Number(value & LOW32) };
  return { v: 6, value };
}

/** RFC 5952 text: lower case, longest run of zero groups compressed. */
function bigIntToV6(value: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function formatIp(ip: ParsedIp): string {
  return ip.v === 4 ? numberToV4(ip.value) : bigIntToV6(ip.value);
}

/** Canonical text of an IP (mapped IPv6 reduced to IPv4), undefined when not an IP. */
export function canonicalIp(ip: string): string | undefined {
  const p = parseIp(ip);
  return p === undefined ? undefined : formatIp(p);
}

function maskV4(value: number, prefix: number): number {
  return prefix === 0 ? 0 : (value & (~0 << (32 - prefix))) >>> 0;
}

function maskV6(value: bigint, prefix: number): bigint {
  const host = 128 - prefix;
  return (value >> BigInt(host)) << BigInt(host);
}

export function maskIp(ip: ParsedIp, prefix: number): number | bigint {
  return ip.v === 4 ? maskV4(ip.value, prefix) : maskV6(ip.value, prefix);
}

/** Parses `a.b.c.d/n` or `x::y/n`; undefined when malformed. A mapped IPv6 network becomes IPv4. */
export function parseCidr(text: string): ParsedCidr | undefined {
  const slash = text.lastIndexOf('/');
  if (slash <= 0) return undefined;
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  let prefix = Number(prefixText);
  const addrText = text.slice(0, slash);
  if (addrText.includes('%')) return undefined;
  let ip: ParsedIp;
  if (isIPv4(addrText)) {
    if (prefix > 32) return undefined;
    ip = { v: 4, value: v4ToNumber(addrText) };
  } else if (isIPv6(addrText)) {
    if (prefix > 128) return undefined;
    const value = v6ToBigInt(addrText);
    if (value >> 32n === 0xffffn && prefix >= 96) {
      ip = { v: 4, value: Number(value & LOW32) };
      prefix -= 96;
    } else {
      ip = { v: 6, value };
    }
  } else {
    return undefined;
  }
  const network = maskIp(ip, prefix);
  const hostBitsSet = network !== ip.value;
  const netIp: ParsedIp = ip.v === 4 ? { v: 4, value: network as number } : { v: 6, value: network as bigint };
  return { v: ip.v, network, prefix, hostBitsSet, canonical: `${formatIp(netIp)}/${prefix}` };
}
