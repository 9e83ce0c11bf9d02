/**
 * Hot-path cost of the state mirror's lookups (isSuspended, riskScore, isIpBlocked) on a filled
 * mirror, against plain Map<string, number> lookups of the same keys in the same run (the
 * structure the mirror used before it went to typed arrays). Client IPs arrive as fresh strings
 * on every request, so the IP rows use a fresh copy per call ("fresh") as well as a reused one.
 * With `--against <dir>/dist/src/state/mirror.js` (another build, e.g. the previous commit's) the
 * same lookups run on that Mirror too, interleaved round by round: compare the two columns.
 * Read the median of the rounds; absolute figures drift with load, ratios within a run do not.
 *   npm run build && taskset -c 1 node dist/bench/mirror-lookup.js [--rounds 7] [--entries 100000] [--against path]
 */
import { Mirror } from '../src/state/mirror.js';
import { median } from './lib/stats.js';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}
const ROUNDS = Number(flag('rounds') ?? 7);
const ENTRIES = Number(flag('entries') ?? 100_000);
const AGAINST = flag('against');
const CALLS = 1_000_000;
const NOW = Date.now();

type Lookups = Pick<Mirror, 'isSuspended' | 'isIpBlocked' | 'riskScore' | 'setSuspended' | 'setBlockedIp' | 'setRisk'>;
const mirror: Lookups = new Mirror();
const other: Lookups | undefined = AGAINST === undefined ? undefined : new ((await import(AGAINST)) as { Mirror: new () => Lookups }).Mirror();
const mirrors = other === undefined ? [mirror] : [mirror, other];
const mapUsers = new Map<string, number>();
const mapIps = new Map<string, number>();
const v4 = (j: number) => `10.${(j >> 16) & 255}.${(j >> 8) & 255}.${j & 255}`;
for (let j = 0; j < ENTRIES; j++) {
  const exp = NOW + 86_400_000 + j;
  if (j % 10 === 9) {
    for (const m of mirrors) m.setSuspended(`user-${j}`, exp);
    for (const m of mirrors) m.setRisk(`user-${j}`, { score: 0.5, expiresAtMs: exp });
    mapUsers.set(`user-${j}`, exp);
  } else {
    for (const m of mirrors) m.setBlockedIp(v4(j), exp);
    mapIps.set(v4(j), exp);
  }
}
for (let j = 0; j < 1000; j++) for (const m of mirrors) m.setBlockedIp(`2001:db8::${j.toString(16)}`, Infinity);

// Half hits, half misses, spread over the table; flat strings, as decoded from a request's bytes
// (a template literal can be a rope, which makes every character read slower).
const flat = (s: string) => Buffer.from(s).toString();
const users = Array.from({ length: 1024 }, (_, i) => flat(i % 2 === 0 ? `user-${(i * 97 * 10 + 9) % ENTRIES}` : `nobody-${i}`));
const ips = Array.from({ length: 1024 }, (_, i) => flat(i % 2 === 0 ? v4((i * 9973) % ENTRIES) : `192.168.${(i >> 8) & 255}.${i & 255}`));
const ips6 = Array.from({ length: 1024 }, (_, i) => flat(i % 2 === 0 ? `2001:db8::${(i % 1000).toString(16)}` : `2001:db8:1::${i.toString(16)}`));
// A copy that V8 has not hashed yet, as a decoded request's header value is.
const fresh = flat;
const freshIps = Array.from({ length: 4096 }, () => '');
const refill = () => {
  for (let i = 0; i < freshIps.length; i++) freshIps[i] = fresh(ips[i & 1023] as string);
};

let sink = 0;
function time(fn: (i: number) => unknown, before?: () => void): number {
  let total = 0;
  for (let done = 0; done < CALLS; done += 4096) {
    before?.();
    const t = process.hrtime.bigint();
    for (let i = 0; i < 4096; i++) if (fn(i)) sink++;
    total += Number(process.hrtime.bigint() - t);
  }
  return total / CALLS;
}

const cases = (m: Lookups): Record<string, [(i: number) => unknown, (() => void)?]> => ({
  'isSuspended': [(i) => m.isSuspended(users[i & 1023] as string, NOW)],
  'riskScore': [(i) => m.riskScore(users[i & 1023] as string, NOW)],
  'isIpBlocked IPv4': [(i) => m.isIpBlocked(ips[i & 1023] as string, NOW)],
  'isIpBlocked IPv4, fresh string': [(i) => m.isIpBlocked(freshIps[i] as string, NOW), refill],
  'isIpBlocked IPv6': [(i) => m.isIpBlocked(ips6[i & 1023] as string, NOW)],
});
const baselines: Record<string, [(i: number) => unknown, (() => void)?]> = {
  'Map.get user': [(i) => (mapUsers.get(users[i & 1023] as string) ?? 0) > NOW],
  'Map.get IPv4': [(i) => (mapIps.get(ips[i & 1023] as string) ?? 0) > NOW],
  'Map.get IPv4, fresh string': [(i) => (mapIps.get(freshIps[i] as string) ?? 0) > NOW, refill],
};

const columns = [cases(mirror), ...(other === undefined ? [] : [cases(other)])];
const times: Record<string, number[][]> = {};
for (let r = 0; r < ROUNDS; r++) {
  for (const name of Object.keys(columns[0]!)) for (const [c, col] of columns.entries()) ((times[name] ??= [])[c] ??= []).push(time(...col[name]!));
  for (const [name, fn] of Object.entries(baselines)) ((times[`${name} (baseline)`] ??= [])[0] ??= []).push(time(...fn));
}
process.stdout.write(`mirror lookups, ${ENTRIES.toLocaleString('en-US')} entries (90 % IPv4, 10 % users with risk) + 1,000 IPv6; ${ROUNDS} rounds of ${CALLS.toLocaleString('en-US')} calls, half hits\n`);
process.stdout.write(`ns/call, median (range) of the rounds; columns: this build${other === undefined ? '' : `, ${AGAINST}`}\n\n`);
for (const [name, cols] of Object.entries(times)) {
  const cell = (t: number[]) => `${median(t).toFixed(1)} (${Math.min(...t).toFixed(0)}-${Math.max(...t).toFixed(0)})`.padStart(22);
  process.stdout.write(`${name.padEnd(34)} ${cols.map(cell).join(' ')}\n`);
}
if (sink < 0) process.stdout.write('');
