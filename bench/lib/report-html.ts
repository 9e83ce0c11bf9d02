import type { BenchReport, ScenarioResult } from './types.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const ms = (us: number) => (Number.isFinite(us) ? (us / 1000).toFixed(3) : '-');

const COLORS = { baseline: '#9aa5b1', server: '#2f6fde', other: '#20a67a', bad: '#d64545', good: '#1f9d55' };

/** Horizontal bars: requests per second of the baseline, the server and any extra series. */
function throughputSvg(r: ScenarioResult): string {
  const t = r.throughput;
  if (!t) return '';
  const bars = [
    { label: 'no-op grpc-js baseline', v: t.baseline, c: COLORS.baseline, ratio: 1 },
    { label: 'zt-authz', v: t.server, c: COLORS.server, ratio: t.ratio },
    ...r.others.map((o) => ({ label: o.label, v: o.reqPerSec, c: COLORS.other, ratio: o.ratio })),
  ];
  const max = Math.max(...bars.map((b) => b.v)) || 1;
  const W = 640;
  const L = 190;
  const H = 30;
  const rows = bars
    .map((b, i) => {
      const w = Math.max(1, ((W - L - 110) * b.v) / max);
      const y = 10 + i * H;
      return `<text x="${L - 8}" y="${y + 15}" text-anchor="end" class="lbl">${esc(b.label)}</text>
<rect x="${L}" y="${y}" width="${w.toFixed(1)}" height="20" rx="3" fill="${b.c}"/>
<text x="${(L + w + 6).toFixed(1)}" y="${y + 15}" class="val">${f0(b.v)} req/s · ${f2(b.ratio)}×</text>`;
    })
    .join('\n');
  return `<svg viewBox="0 0 ${W} ${20 + bars.length * H}" width="100%" role="img" aria-label="throughput against the baseline">${rows}</svg>`;
}

/** Latency (log y) against percentile on a log(1/(1-p)) x axis, server and baseline. */
function latencySvg(r: ScenarioResult): string {
  const l = r.latency;
  if (!l || l.curve.length === 0) return '';
  const W = 640;
  const H = 280;
  const pad = { l: 60, r: 20, t: 16, b: 40 };
  const series = [{ pts: l.curve, c: COLORS.server, name: 'zt-authz' }, ...(l.baselineCurve ? [{ pts: l.baselineCurve, c: COLORS.baseline, name: 'no-op baseline' }] : [])];
  const all = series.flatMap((s) => s.pts.map((p) => p.v)).filter((v) => v > 0);
  const lo = Math.log10(Math.max(1, Math.min(...all)));
  const hi = Math.log10(Math.max(...all)) + 0.05;
  const x = (p: number) => pad.l + ((W - pad.l - pad.r) * Math.min(4, -Math.log10(Math.max(1e-4, 1 - p / 100)))) / 4;
  const y = (v: number) => H - pad.b - ((H - pad.t - pad.b) * (Math.log10(Math.max(1, v)) - lo)) / Math.max(0.1, hi - lo);
  const grid: string[] = [];
  for (const [p, name] of [[0, 'p0'], [50, 'p50'], [90, 'p90'], [99, 'p99'], [99.9, 'p99.9'], [99.99, 'p99.99']] as const) {
    grid.push(`<line x1="${x(p)}" x2="${x(p)}" y1="${pad.t}" y2="${H - pad.b}" class="grid"/><text x="${x(p)}" y="${H - pad.b + 16}" text-anchor="middle" class="ax">${name}</text>`);
  }
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (Math.log10(v) < lo || Math.log10(v) > hi) continue;
      grid.push(`<line x1="${pad.l}" x2="${W - pad.r}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${pad.l - 6}" y="${y(v) + 4}" text-anchor="end" class="ax">${v >= 1000 ? `${v / 1000} ms` : `${v} µs`}</text>`);
    }
  }
  const lines = series
    .map((s) => `<polyline fill="none" stroke="${s.c}" stroke-width="2.2" points="${s.pts.map((p) => `${x(p.p).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ')}"/>`)
    .join('\n');
  const legend = series.map((s, i) => `<rect x="${pad.l + 10 + i * 150}" y="${pad.t + 4}" width="12" height="12" fill="${s.c}"/><text x="${pad.l + 28 + i * 150}" y="${pad.t + 14}" class="lbl" text-anchor="start">${s.name}</text>`).join('');
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="latency percentiles">${grid.join('\n')}${lines}${legend}
<text x="${(W + pad.l) / 2}" y="${H - 4}" text-anchor="middle" class="ax">percentile (log scale towards the tail)</text></svg>`;
}

function latencyTable(r: ScenarioResult): string {
  const l = r.latency;
  if (!l) return '';
  const row = (name: string, p: { p50: number; p90: number; p99: number; p999: number }) => `<tr><td>${name}</td><td>${ms(p.p50)}</td><td>${ms(p.p90)}</td><td>${ms(p.p99)}</td><td>${ms(p.p999)}</td></tr>`;
  return `<table><tr><th>ms</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th></tr>
${row('zt-authz, client-observed', l.server)}${l.baseline ? row('no-op baseline, client-observed', l.baseline) : ''}${l.handler ? row('zt-authz handler only (histogram)', l.handler) : ''}</table>`;
}

function scenarioHtml(r: ScenarioResult): string {
  const ok = r.decisions.every((d) => d.ok);
  const targets = r.targets.length
    ? `<ul class="targets">${r.targets.map((t) => `<li class="${t.met ? 'met' : 'miss'}">${t.met ? '✔' : '✘'} ${esc(t.name)}: <b>${f2(t.value)}</b> (goal ${esc(t.target)})</li>`).join('')}</ul>`
    : '';
  const figures = r.figures.length ? `<table>${r.figures.map((f) => `<tr><td>${esc(f.label)}</td><td>${Number.isInteger(f.value) ? f0(f.value) : f2(f.value)} ${esc(f.unit)}</td></tr>`).join('')}</table>` : '';
  const decisions = r.decisions
    .map((d) => {
      const keys = [...new Set([...Object.keys(d.expected), ...Object.keys(d.observed)])].sort();
      return `<table class="dec"><tr><th>reason</th><th>${d.mode === 'exact' ? 'expected' : 'at least'}</th><th>counted on /metrics</th></tr>${keys.map((k) => `<tr><td>${esc(k)}</td><td>${f0(d.expected[k] ?? 0)}</td><td>${f0(d.observed[k] ?? 0)}</td></tr>`).join('')}</table>${d.problems.map((p) => `<p class="miss">${esc(p)}</p>`).join('')}`;
    })
    .join('');
  return `<section>
<h2>${esc(r.title)} <span class="badge ${ok ? 'met' : 'miss'}">${ok ? 'decisions correct' : 'WRONG DECISIONS'}</span></h2>
<p class="desc">${esc(r.description)}</p>
${targets}
<div class="charts">${throughputSvg(r)}${latencySvg(r)}</div>
${latencyTable(r)}
<details><summary>figures, decisions, commands</summary>${figures}${decisions}${r.commands.map((c) => `<pre>${esc(c)}</pre>`).join('')}${r.notes.map((n) => `<p class="note">${esc(n)}</p>`).join('')}</details>
</section>`;
}

/** One self-contained page: inline CSS and SVG, no scripts, no external resources. */
export function renderHtml(report: BenchReport): string {
  const m = report.machine;
  const summary = report.results
    .map((r) => {
      const t = r.throughput;
      const l = r.latency;
      return `<tr><td><a href="#${esc(r.name)}">${esc(r.name)}</a></td><td>${t ? f0(t.server) : l ? `${f0(l.rate)}` : '-'}</td><td>${t ? f0(t.baseline) : '-'}</td><td>${t ? `<b>${f2(t.ratio)}×</b>` : '-'}</td><td>${l ? ms(l.server.p50) : '-'}</td><td>${l ? ms(l.server.p99) : '-'}</td><td class="${r.decisions.every((d) => d.ok) ? 'met' : 'miss'}">${r.decisions.every((d) => d.ok) ? 'correct' : 'WRONG'}</td></tr>`;
    })
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>zt-authz bench ${esc(report.generated)}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;background:#f5f7fa;color:#1f2933}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:0 0 6px}
section{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:18px 22px;margin:18px 0}
.desc{color:#52606d;margin:4px 0 10px}.machine{color:#52606d}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border-bottom:1px solid #e4e7eb;text-align:right}td:first-child,th:first-child{text-align:left}
.badge{font-size:12px;padding:2px 8px;border-radius:10px;vertical-align:middle;color:#fff}.badge.met{background:${COLORS.good}}.badge.miss{background:${COLORS.bad}}
.met{color:${COLORS.good}}.miss{color:${COLORS.bad}}.targets{list-style:none;padding:0;margin:6px 0}
svg .lbl{font-size:12px;fill:#323f4b}svg .val{font-size:12px;fill:#323f4b;font-weight:600}svg .ax{font-size:11px;fill:#7b8794}svg .grid{stroke:#e4e7eb}
pre{background:#f0f4f8;padding:8px;border-radius:6px;overflow-x:auto;font-size:12px}.note{color:#7b8794;font-size:13px}
summary{cursor:pointer;color:#3e4c59;margin-top:8px}
</style></head><body><main>
<h1>zt-authz benchmark</h1>
<p class="machine">${esc(report.generated)} · ${m.cpus} × ${esc(m.cpu)}, ${m.memoryGb} GB · Node ${esc(m.node)} · ${esc(m.h2load)} · ${esc(m.pinning)} · workers ${m.workers} · NODE_OPTIONS <code>${esc(m.nodeOptions || "(none)")}</code><br><code>${esc(report.command)}</code></p>
<p>Every throughput figure is a ratio against a no-op grpc-js <code>Check</code> server (same protos, same options) measured in the same run with the same load, because absolute numbers on a shared machine drift. Decisions are counted on the server's <code>/metrics</code>, not from HTTP status codes.</p>
${report.failures.length ? `<section><h2 class="miss">Failures</h2><ul>${report.failures.map((f) => `<li>${esc(f)}</li>`).join('')}</ul></section>` : ''}
<section><h2>Summary</h2><table><tr><th>scenario</th><th>req/s</th><th>baseline req/s</th><th>ratio</th><th>p50 ms</th><th>p99 ms</th><th>decisions</th></tr>${summary}</table></section>
${report.results.map((r) => `<a id="${esc(r.name)}"></a>${scenarioHtml(r)}`).join('\n')}
</main></body></html>
`;
}
