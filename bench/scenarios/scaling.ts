import { fileURLToPath } from 'node:url';
import { checkExact } from '../lib/context.js';
import { startNodeChild } from '../lib/proc.js';
import type { ScalingArgs, ScalingResult } from '../lib/scaling-child.js';
import type { Scenario } from '../lib/scenario.js';
import type { ScenarioResult } from '../lib/types.js';

const CHILD = fileURLToPath(new URL('../lib/scaling-child.js', import.meta.url));
/** A curve is flat when its costliest point is within this factor of its smallest-work point. */
export const FLAT_BAND = 1.2;

export const scaling: Scenario = {
  name: 'scaling',
  title: 'Scaling: decision cost against routes, blocked CIDRs and issuers',
  description:
    'In process on the server core, one cached-token decision (checkWire on the decoded bench request, as the gRPC handler calls it) for each size of the work: routes (prefix, exact and pattern; hosts exact and *.suffix; methods mixed; the matching route last in config order), blocked CIDRs (IPv4 and IPv6, none covering the client) and issuers (the token from the last one; cached, and every call verifying). Each size is its own server instance built before timing; rounds interleave the sizes and each point is the median. Heap is what the work holds after a full GC. The band is the target: within 1.2x of the smallest size.',
  async run(ctx) {
    const o = ctx.opts;
    const args: ScalingArgs = {
      routes: o.quick ? [10, 100] : [10, 100, 1000, 10_000],
      cidrs: o.quick ? [100, 1000] : [1000, 10_000, 100_000],
      issuers: o.quick ? [1, 3] : [1, 10, 50],
      rounds: o.quick ? 2 : Math.max(5, o.rounds),
      roundMs: o.quick ? 20 : 300,
      workDir: o.workDir,
    };
    ctx.log(`  building ${args.routes.length + 2 * args.cidrs.length + 2 * args.issuers.length} instances, then ${args.rounds} interleaved rounds`);
    const child = startNodeChild<ScalingResult>(CHILD, [JSON.stringify(args)], {
      cpus: ctx.cpus.server,
      logFile: ctx.file('scaling.log'),
      nodeArgs: ['--expose-gc'],
      readyTimeoutMs: 900_000,
    });
    const { curves, node, calls, counted } = await child.ready;
    await child.stop();
    const result: ScenarioResult = {
      name: this.name,
      title: this.title,
      description: this.description,
      others: [],
      curves,
      decisions: [checkExact(new Map([['allowed', calls]]), new Map(Object.entries(counted)))],
      figures: [],
      targets: [],
      commands: [`taskset -c ${ctx.cpus.server ?? '(unpinned)'} node --expose-gc dist/bench/lib/scaling-child.js '${JSON.stringify({ ...args, workDir: 'DIR' })}'`],
      notes: [
        `measured on Node ${node}`,
        'blocked-CIDR prefix lengths: IPv4 /16-/32, IPv6 /32 /40 /48 /56 /64 /96 /112 /128; a lookup that misses tries each length in use, so its cost follows the number of distinct lengths, not of entries',
        'issuer heap per entry is the growth over the one-issuer instance divided by the added issuers (each instance also holds a whole server)',
      ],
    };
    for (const c of curves) {
      const first = c.points[0]!;
      const worst = Math.max(...c.points.map((p) => p.us));
      for (const p of c.points) {
        const perEntry = c.name.startsWith('issuers') ? (p.x === first.x ? Number.NaN : (p.heapBytes - first.heapBytes) / (p.x - first.x)) : p.heapBytes / p.x;
        result.figures.push({ label: `${c.name} ${p.x.toLocaleString('en-US')}: µs per decision`, value: p.us, unit: 'µs' });
        if (!c.name.endsWith('-verify')) {
          result.figures.push({ label: `${c.name} ${p.x.toLocaleString('en-US')}: heap`, value: Math.round(p.heapBytes / 1024), unit: 'KiB' });
          if (Number.isFinite(perEntry)) result.figures.push({ label: `${c.name} ${p.x.toLocaleString('en-US')}: heap per ${c.entryLabel}`, value: Math.round(perEntry), unit: 'bytes' });
        }
        for (const [k, v] of Object.entries(p.extra)) result.figures.push({ label: `${c.name} ${p.x.toLocaleString('en-US')}: ${k}`, value: v, unit: k.endsWith('Ms') ? 'ms' : 'µs' });
      }
      ctx.log(`  ${c.name}: ${c.points.map((p) => `${p.x}: ${p.us.toFixed(2)} µs`).join(', ')}`);
      const ratio = worst / first.us;
      result.targets.push({ name: `${c.title}: costliest point / ${first.x.toLocaleString('en-US')} ${c.xLabel}`, value: ratio, target: `<= ${FLAT_BAND}x`, met: ratio <= FLAT_BAND });
    }
    return result;
  },
};
