import { networkKey, parseCidr, parseIp, type ParsedCidr } from '../ip.js';

/** A short list of networks (trusted proxies), read with src/ip.ts like the block lists. */
export interface CidrList {
  readonly networks: readonly ParsedCidr[];
}

/** Compiles IPs and CIDRs once; a bare address is its own /32 or /128. Throws on a bad entry. */
export function compileCidrs(entries: readonly string[]): CidrList {
  const networks = entries.map((entry) => {
    const text = entry.trim();
    const cidr = parseCidr(text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`);
    if (cidr === undefined) throw new Error(`not an IP or CIDR: ${entry}`);
    return cidr;
  });
  return { networks };
}

export function inList(list: CidrList, ip: string): boolean {
  const parsed = parseIp(ip);
  if (parsed === undefined) return false;
  for (const n of list.networks) if (n.v === parsed.v && networkKey(parsed, n.prefix) === n.key) return true;
  return false;
}
