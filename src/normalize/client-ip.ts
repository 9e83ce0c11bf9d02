import { canonicalIp, parseV4 } from '../ip.js';

/**
 * Canonical text of an IP so that one address has one key in block lists: IPv4-mapped IPv6
 * (`::ffff:10.0.0.1`) becomes IPv4, IPv6 takes its RFC 5952 form, zone ids and brackets are
 * dropped. Returns '' for anything that is not an IP. Parsing is src/ip.ts's, the one IP parser
 * (the block lists read addresses with it too).
 */
export function normalizeIp(value: string): string {
  let ip = value.trim();
  if (ip.startsWith('[')) {
    const close = ip.indexOf(']');
    ip = close === -1 ? '' : ip.slice(1, close);
  }
  // A strict dotted quad is already canonical: no new string for the common case.
  if (!ip.includes(':')) return parseV4(ip) === undefined ? '' : ip;
  return canonicalIp(ip) ?? '';
}

/**
 * The client address. By default the downstream peer Envoy saw; with N trusted hops, the address
 * the outermost trusted proxy saw, i.e. the N-th x-forwarded-for entry from the right. Entries to
 * the left of that are client-supplied and never trusted.
 */
export function clientIp(sourceAddress: string, xff: string | undefined, trustedHops: number): string {
  if (trustedHops > 0 && xff) {
    const parts = xff.split(',');
    const idx = Math.max(0, parts.length - trustedHops);
    const candidate = normalizeIp(parts[idx] ?? '');
    if (candidate) return candidate;
  }
  return normalizeIp(sourceAddress);
}
