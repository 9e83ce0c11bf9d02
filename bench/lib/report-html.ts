import type { BenchReport, Curve, ScenarioResult } from './types.js';

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

/** Band a curve should stay in: this factor over its smallest-work point. */
const CURVE_BAND = 1.2;

/**
 * One curve: µs per decision (left axis) against the work size on a log x axis, the target band
 * shaded from the first point to 1.2x of it, and heap per size as a dashed second series (right axis).
 */
function curveSvg(c: Curve): string {
  const pts = c.points.filter((p) => Number.isFinite(p.us) && p.x > 0);
  if (pts.length === 0) return '';
  const W = 640;
  const H = 260;
  const pad = { l: 64, r: 70, t: 28, b: 44 };
  const base = pts[0]!.us;
  const top = Math.max(base * CURVE_BAND * 1.15, ...pts.map((p) => p.range[1]));
  const lx = pts.map((p) => Math.log10(p.x));
  const x0 = Math.min(...lx);
  const x1 = Math.max(...lx);
  const x = (v: number) => pad.l + ((W - pad.l - pad.r) * (Math.log10(v) - x0)) / Math.max(1e-9, x1 - x0);
  const y = (us: number) => H - pad.b - ((H - pad.t - pad.b) * us) / top;
  const heaps = pts.map((p) => p.heapBytes).filter((b) => Number.isFinite(b) && b > 0);
  const heapTop = heaps.length ? Math.max(...heaps) * 1.1 : 1;
  const yh = (b: number) => H - pad.b - ((H - pad.t - pad.b) * Math.max(0, b)) / heapTop;
  const grid: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    grid.push(`<line x1="${pad.l}" x2="${W - pad.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/><text x="${pad.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" class="ax">${v.toFixed(v < 10 ? 1 : 0)} µs</text>`);
    if (heaps.length) grid.push(`<text x="${W - pad.r + 6}" y="${(yh((heapTop * i) / 4) + 4).toFixed(1)}" class="ax">${fmtBytes((heapTop * i) / 4)}</text>`);
  }
  for (const p of pts) grid.push(`<text x="${x(p.x).toFixed(1)}" y="${H - pad.b + 16}" text-anchor="middle" class="ax">${f0(p.x)}</text>`);
  const band = `<rect x="${pad.l}" y="${y(base * CURVE_BAND).toFixed(1)}" width="${W - pad.l - pad.r}" height="${(y(base) - y(base * CURVE_BAND)).toFixed(1)}" fill="${COLORS.good}" opacity="0.15"/><line x1="${pad.l}" x2="${W - pad.r}" y1="${y(base * CURVE_BAND).toFixed(1)}" y2="${y(base * CURVE_BAND).toFixed(1)}" stroke="${COLORS.good}" stroke-dasharray="4 3"/>`;
  const ranges = pts.map((p) => `<line x1="${x(p.x).toFixed(1)}" x2="${x(p.x).toFixed(1)}" y1="${y(p.range[0]).toFixed(1)}" y2="${y(p.range[1]).toFixed(1)}" stroke="${COLORS.server}" opacity="0.35" stroke-width="6"/>`).join('');
  const line = `<polyline fill="none" stroke="${COLORS.server}" stroke-width="2.2" points="${pts.map((p) => `${x(p.x).toFixed(1)},${y(p.us).toFixed(1)}`).join(' ')}"/>`;
  const dots = pts.map((p) => `<circle cx="${x(p.x).toFixed(1)}" cy="${y(p.us).toFixed(1)}" r="3.5" fill="${p.us <= base * CURVE_BAND ? COLORS.server : COLORS.bad}"><title>${f0(p.x)} ${esc(c.xLabel)}: ${f2(p.us)} µs (${f2(p.us / base)}×)</title></circle>`).join('');
  const heapLine = heaps.length === pts.length ? `<polyline fill="none" stroke="${COLORS.baseline}" stroke-width="1.6" stroke-dasharray="5 4" points="${pts.map((p) => `${x(p.x).toFixed(1)},${yh(p.heapBytes).toFixed(1)}`).join(' ')}"/>` : '';
  const legend = `<rect x="${pad.l + 6}" y="8" width="12" height="4" fill="${COLORS.server}"/><text x="${pad.l + 22}" y="13" class="lbl">µs per decision (bar: round range)</text><rect x="${pad.l + 230}" y="6" width="12" height="8" fill="${COLORS.good}" opacity="0.3"/><text x="${pad.l + 246}" y="13" class="lbl">target: ≤ ${CURVE_BAND}× of ${f0(pts[0]!.x)}</text>${heapLine ? `<line x1="${pad.l + 400}" x2="${pad.l + 414}" y1="10" y2="10" stroke="${COLORS.baseline}" stroke-dasharray="5 4"/><text x="${pad.l + 418}" y="13" class="lbl">heap (right axis)</text>` : ''}`;
  return `<figure><figcaption>${esc(c.title)}</figcaption><svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${esc(c.title)}">${band}${grid.join('')}${ranges}${line}${heapLine}${dots}${legend}<text x="${(W + pad.l - pad.r) / 2}" y="${H - 6}" text-anchor="middle" class="ax">${esc(c.xLabel)} (log scale)</text></svg></figure>`;
}

function fmtBytes(b: number): string {
  if (b >= 2 ** 20) return `${(b / 2 ** 20).toFixed(1)} MiB`;
  if (b >= 1024) return `${(b / 1024).toFixed(0)} KiB`;
  return `${Math.round(b)} B`;
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
<div class="charts">${throughputSvg(r)}${latencySvg(r)}${(r.curves ?? []).map(curveSvg).join('')}</div>
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
figure{margin:10px 0}figcaption{font-weight:600;color:#323f4b;font-size:14px}
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
