import { isIP } from 'node:net';

/**
 * Canonical text of an IP so that one address has one key in block lists: IPv4-mapped IPv6
 * (`::ffff:10.0.0.1`) becomes IPv4, IPv6 is lower-cased, zone ids and brackets are dropped.
 * Returns '' for anything that is not an IP.
 */
export function normalizeIp(value: string): string {
  let ip = value.trim();
  if (ip.startsWith('[')) {
    const close = ip.indexOf(']');
    ip = close === -1 ? '' : ip.slice(1, close);
  }
  const zone = ip.indexOf('%');
  if (zone !== -1) ip = ip.slice(0, zone);
  const kind = isIP(ip);
  if (kind === 4) return ip;
  if (kind !== 6) return '';
  ip = ip.toLowerCase();
  const mapped = /^(?:0{0,4}:){0,5}(?:0{0,4}:)?ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(ip) ?? /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(ip);
  if (mapped?.[1] && isIP(mapped[1]) === 4) return mapped[1];
  return ip;
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
