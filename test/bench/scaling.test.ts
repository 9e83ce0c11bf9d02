import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchReport, ScenarioResult } from '../../bench/lib/types.js';
import { DIST_BENCH, ensureBuilt } from './build.js';

/** `npm run bench -- --scenario scaling` (quick sizes): curves for routes, CIDRs and issuers, drawn in the report. Never a speed. */
describe('bench --scenario scaling', () => {
  let out: string;
  let result: ScenarioResult;
  let report: BenchReport;

  beforeAll(async () => {
    await ensureBuilt();
    out = mkdtempSync(join(tmpdir(), 'zt-bench-scaling-'));
    await promisify(execFile)(process.execPath, [join(DIST_BENCH, 'run.js'), '--quick', '--scenario', 'scaling', '--out', out], { timeout: 280_000, maxBuffer: 16 * 1024 * 1024 });
    report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as BenchReport;
    result = report.results.find((r) => r.name === 'scaling')!;
  }, 300_000);

  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('measures a curve for routes, IPv4 and IPv6 CIDRs and issuers, each point with cost and heap', () => {
    expect(report.failures).toEqual([]);
    expect(result.curves!.map((c) => c.name)).toEqual(['routes', 'cidrs-v4', 'cidrs-v6', 'issuers', 'issuers-verify']);
    for (const c of result.curves!) {
      expect(c.points.length, c.name).toBeGreaterThanOrEqual(2);
      expect(c.points.map((p) => p.x), c.name).toEqual([...c.points.map((p) => p.x)].sort((a, b) => a - b));
      for (const p of c.points) {
        expect(p.us, c.name).toBeGreaterThan(0);
        expect(Number.isFinite(p.heapBytes), c.name).toBe(true);
      }
    }
    const routes = result.curves!.find((c) => c.name === 'routes')!;
    for (const p of routes.points) expect(p.extra['compileMs']).toBeGreaterThan(0);
    // One target per curve, judged against the band.
    expect(result.targets.map((t) => t.target)).toEqual(result.curves!.map(() => '<= 1.2x'));
  });

  it('every timed decision was an allow, as the servers counted them', () => {
    expect(result.decisions).toHaveLength(1);
    expect(result.decisions[0]!.problems).toEqual([]);
    expect(result.decisions[0]!.observed['allowed']).toBeGreaterThan(100);
  });

  it('draws each curve as an inline SVG line chart with its target band', () => {
    const html = readFileSync(join(out, 'latest.html'), 'utf8');
    expect(html).not.toMatch(/<script|<link|src="http/);
    for (const c of result.curves!) expect(html).toContain(`<figcaption>${c.title}</figcaption>`);
    expect(html.match(/<polyline/g)!.length).toBeGreaterThanOrEqual(result.curves!.length);
    expect(html).toContain('target: ≤ 1.2×');
  });
});
