import type { BenchReport } from './types.js';

const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
export const ms = (us: number) => (Number.isFinite(us) ? (us / 1000).toFixed(us < 10_000 ? 3 : 1) : '-');

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r, i) => {
      const line = r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
      return i === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

/** The console table: throughput against the same-run baseline, latency, targets, decisions. */
export function renderTable(report: BenchReport): string {
  const m = report.machine;
  const out: string[] = [];
  out.push(`zt-authz bench — ${m.cpus} x ${m.cpu}, ${m.memoryGb} GB, Node ${m.node}, ${m.h2load}; ${m.pinning}; workers ${m.workers}; NODE_OPTIONS=${m.nodeOptions || "(none)"}`);
  out.push('');
  const rows: string[][] = [['scenario', 'generator', 'req/s', 'baseline req/s', 'ratio', 'p50 ms', 'p99 ms', 'p99.9 ms', 'decisions']];
  for (const r of report.results) {
    const t = r.throughput;
    const l = r.latency;
    rows.push([
      r.name,
      t?.generator ?? (l ? 'h2load fixed-conc.' : '-'),
      t ? f0(t.server) : l ? `${f0(l.rate)} (rate)` : '-',
      t ? f0(t.baseline) : '-',
      t ? `${f2(t.ratio)}x` : '-',
      l ? ms(l.server.p50) : '-',
      l ? ms(l.server.p99) : '-',
      l ? ms(l.server.p999) : '-',
      r.decisions.every((d) => d.ok) ? 'correct' : 'WRONG',
    ]);
    for (const o of r.others) rows.push([`  ${o.label}`, '', f0(o.reqPerSec), '', `${f2(o.ratio)}x`, '', '', '', '']);
  }
  out.push(table(rows));
  const figures = report.results.flatMap((r) => r.figures.map((f) => [`${r.name}: ${f.label}`, `${Number.isInteger(f.value) ? f0(f.value) : f2(f.value)} ${f.unit}`]));
  if (figures.length) {
    out.push('');
    out.push(table([['figure', 'value'], ...figures]));
  }
  const targets = report.results.flatMap((r) => r.targets.map((t) => [`${r.name}: ${t.name}`, f2(t.value), t.target, t.met ? 'met' : 'NOT MET']));
  if (targets.length) {
    out.push('');
    out.push(table([['target', 'measured', 'goal', ''], ...targets]));
  }
  const notes = report.results.flatMap((r) => r.notes.map((n) => `${r.name}: ${n}`));
  if (notes.length) out.push('', ...notes.map((n) => `note: ${n}`));
  for (const r of report.results) for (const d of r.decisions) if (!d.ok) out.push(`WRONG DECISIONS in ${r.name}: ${d.problems.join('; ')}`);
  return out.join('\n');
}
