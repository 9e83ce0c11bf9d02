import { BlockList, isIP } from 'node:net';

/** Compile a list of IPs / CIDRs once into node's BlockList (handles v4, v6 and mapped forms). */
export function compileCidrs(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [addr, bits] = entry.split('/');
    const type = isIP(addr ?? '');
    if (type === 0) throw new Error(`not an IP or CIDR: ${entry}`);
    const family = type === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr!, family);
    else list.addSubnet(addr!, Number(bits), family);
  }
  return list;
}

export function inList(list: BlockList, ip: string): boolean {
  const type = isIP(ip);
  return type !== 0 && list.check(ip, type === 4 ? 'ipv4' : 'ipv6');
}
