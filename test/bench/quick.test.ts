import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchReport } from '../../bench/lib/types.js';
import { SCENARIOS } from '../../bench/scenarios/index.js';
import { median } from '../../bench/lib/stats.js';
import { DIST_BENCH, ensureBuilt } from './build.js';

/** CI smoke test: the harness runs end to end and every scenario's decisions are right. Never a speed. */
describe('bench --quick', () => {
  let out: string;
  let stdout = '';
  let code: number | undefined;
  let report: BenchReport;

  beforeAll(async () => {
    await ensureBuilt();
    out = mkdtempSync(join(tmpdir(), 'zt-bench-quick-'));
    try {
      ({ stdout } = await promisify(execFile)(process.execPath, [join(DIST_BENCH, 'run.js'), '--quick', '--out', out], { timeout: 400_000, maxBuffer: 16 * 1024 * 1024 }));
      code = 0;
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      code = e.code ?? -1;
      stdout = `${e.stdout ?? ''}\n${e.stderr ?? ''}`;
    }
    report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as BenchReport;
  }, 420_000);

  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('runs every scenario without failures and exits 0', () => {
    expect(report.failures, stdout).toEqual([]);
    expect(code).toBe(0);
    expect(report.results.map((r) => r.name)).toEqual(SCENARIOS.map((s) => s.name));
  });

  it('counts the expected decisions on the server in every scenario', () => {
    for (const r of report.results) {
      expect(r.decisions.length, r.name).toBeGreaterThan(0);
      for (const d of r.decisions) {
        expect(d.problems, r.name).toEqual([]);
        expect(Object.values(d.observed).reduce((a, b) => a + b, 0), r.name).toBeGreaterThan(0);
      }
    }
    const mix = report.results.find((r) => r.name === 'realistic-mix')!;
    expect(Object.keys(mix.decisions[0]!.observed).length).toBe(11);
  });

  it('measures every series against a baseline from the same run', () => {
    for (const r of report.results.filter((x) => x.throughput)) {
      expect(r.throughput!.baseline, r.name).toBeGreaterThan(0);
      // The ratio is the median of per-round ratios, each round's pair measured back to back.
      expect(r.throughput!.ratio, r.name).toBeCloseTo(median(r.throughput!.rounds.map((x) => x.server / x.baseline)), 6);
    }
    const lat = report.results.find((r) => r.name === 'latency-half-load')!;
    expect(lat.latency!.server.count).toBeGreaterThan(0);
    expect(lat.latency!.baseline!.count).toBeGreaterThan(0);
  });

  it('prints the table and writes a self-contained HTML report', () => {
    expect(stdout).toMatch(/scenario\s+generator\s+req\/s\s+baseline req\/s\s+ratio/);
    const html = readFileSync(join(out, 'latest.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|<link|src="http/);
    for (const r of report.results) expect(html).toContain(r.title.replace(/&/g, '&amp;'));
    expect(existsSync(join(out, 'latest.json'))).toBe(true);
  });
});
