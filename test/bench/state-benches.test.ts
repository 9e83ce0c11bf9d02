import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DIST_BENCH, ensureBuilt } from './build.js';

/**
 * The state benches the README quotes, run at a size this suite can afford: each must finish
 * and print every figure it reports (the README's runs use 500 sidecars and 100,000 entries).
 */
const run = (script: string, args: string[], timeoutMs: number) =>
  promisify(execFile)(process.execPath, [join(DIST_BENCH, script), ...args], { timeout: timeoutMs }).then((r) => r.stdout);

describe('state benches', () => {
  it('state-scale: steady state, write load, restart storm and the 10,000-sidecar extrapolation', async () => {
    await ensureBuilt();
    const out = await run('state-scale.js', ['--sidecars', '4', '--entries', '5000', '--away-writes', '20', '--procs', '2', '--alone', '2', '--steady-s', '1', '--writes-per-s', '10', '--write-s', '1', '--redis-nice', '-10'], 150_000);
    // Raised where the runner may (root or CAP_SYS_NICE); otherwise the header says it was not.
    expect(out).toMatch(/redis-server \S+ on :\d+ at nice (-10|0: raising it to -10 failed)/);
    expect(out).toMatch(/connections: 8 for 4 sidecars = 2\.00 per sidecar/);
    expect(out).toMatch(/## Quiet steady state \(1 s\): [\d,]+ µs of command time per sidecar per minute/);
    // The writer paces itself at 10/s for 1 s, so it makes 10 writes, or 11 when a tick lands on the end; every sidecar sees each.
    const writes = Number(/## Write load: (\d+) plain SETEXs/.exec(out)?.[1]);
    expect(writes).toBeGreaterThanOrEqual(10);
    expect(out).toMatch(new RegExp(`write -> enforced on every sidecar: n=${writes * 4} p50=[\\d.,]+ ms p99=[\\d.,]+ ms max=[\\d.,]+ ms; not seen within 10 s: 0`));
    expect(out).toMatch(new RegExp(`of which the 2 sidecars alone in a process each, as in a pod: n=${writes * 2} p50=[\\d.,]+ ms p99=[\\d.,]+ ms`));
    expect(out).toMatch(/## Restart storm: .*all 4 back in sync/);
    expect(out).toMatch(/resyncs per sidecar since the cold start: [\d.]+ completed/);
    // The writes made while the fleet was away reach it through the changed buckets alone: every
    // sidecar that did not build is counted as incremental or whole, and at least one is incremental.
    const caught = /20 writes made while the fleet was away; (\d+) sidecars caught up incrementally \(only the changed buckets\), (\d+) read the whole snapshot, (\d+) built one/.exec(out);
    expect(caught).not.toBeNull();
    const [incremental, whole, built] = caught!.slice(1).map(Number) as [number, number, number];
    expect(incremental + whole + built).toBe(4);
    expect(incremental).toBeGreaterThanOrEqual(1);
    expect(out).toMatch(/first snapshot published after [\d.]+ s; in sync after: 50 % [\d.]+ s/);
    // Each pod that starts into a fleet in sync is served by the published snapshot and its
    // keeper's log, or (a keeper too slow to answer within its wait) builds; never neither.
    const pods = /in sync .* after the process was forked; (\d+) built a snapshot \(([^)]*)\), (\d+) took the published one with its keeper's log; [\d,]+ µs of Redis command time per start/.exec(out);
    expect(pods).not.toBeNull();
    const podBuilt = Number(pods![1]);
    const podLogged = Number(pods![3]);
    expect(podBuilt + podLogged).toBe(3);
    expect(podLogged).toBeGreaterThanOrEqual(1);
    // Every build is counted under the reason no published snapshot would do.
    expect(tallied(pods![2] as string)).toBe(podBuilt);
    const storm = /(\d+) snapshot builds; catch-up[^\n]*\n\s*builds by reason: ([^;]*);/.exec(out);
    expect(storm).not.toBeNull();
    expect(tallied(storm![2] as string)).toBe(Number(storm![1]));
    expect(out).toMatch(/all [\d.]+ s; the 2 sidecars alone in a process each, as in a pod: [\d.]+ s/);
    expect(out).toMatch(/the 2 alone hold the product's mirror of every entry; their event loop's delay from the outage to back in sync: p99 [\d.]+, [\d.]+ ms; max [\d.]+, [\d.]+ ms; CPU [\d.]+, [\d.]+ s/);
    expect(out).toMatch(/CPU of the 2 fleet processes from the outage to back in sync: [\d.]+, [\d.]+ s \([\d.]+ s in all; Redis [\d.]+ s once its AOF was loaded\)/);
    expect(out).toMatch(/catch-up transfer: 10,000 x [\d.,]+ KiB read per sidecar as measured/);
    expect(out).toMatch(/## Mirror memory .*entries in mirror: 5,000/);
    expect(out).toMatch(/steady state: [\d,]+ µs\/sidecar\/min x 10,000 = [\d.]+ % of one Redis core/);
  }, 180_000);

  /** The count in a bench's "reason n, reason m" tally ("none": 0). */
  function tallied(t: string): number {
    return t === 'none' ? 0 : t.split(', ').reduce((n, part) => n + Number((/ ([\d,]+)$/.exec(part)?.[1] ?? 'NaN').replace(/,/g, '')), 0);
  }

  it('snapshot-read: one reader of the deflated snapshot against raw pages in the same run', async () => {
    await ensureBuilt();
    const out = await run('snapshot-read.js', ['--entries', '2000', '--readers', '3'], 60_000);
    expect(out).toMatch(/baseline, raw pages in 256 KB windows: [\d,]+ µs per reader/);
    expect(out).toMatch(/published, deflated: [\d,]+ µs per reader/);
  }, 90_000);

  it('catch-up-cpu: a catch-up by whole buckets against one by the entries that differ, on the same snapshots', async () => {
    await ensureBuilt();
    const out = await run('catch-up-cpu.js', ['--entries', '20000', '--changes', '10', '--rounds', '1'], 60_000);
    const row = /\| 20,000 \| 10 \| ([\d,]+) of 256 \| [\d.,]+ \| ([\d,]+) \| [\d.,]+ \| ([\d,]+) \| [\d.]+ \|/.exec(out);
    expect(row).not.toBeNull();
    const [buckets, whole, delta] = row!.slice(1).map((n) => Number(n.replace(/,/g, ''))) as [number, number, number];
    expect(buckets).toBeGreaterThanOrEqual(1);
    // Whole buckets apply both versions of every entry in them; the delta at least the changes.
    expect(whole).toBeGreaterThan(delta);
    expect(delta).toBeGreaterThanOrEqual(5);
  }, 90_000);

  it('mirror-lookup: ns per call for each lookup and the Map baseline', async () => {
    await ensureBuilt();
    const out = await run('mirror-lookup.js', ['--entries', '2000', '--rounds', '1'], 60_000);
    for (const row of ['isSuspended', 'riskScore', 'isIpBlocked IPv4, fresh string', 'isIpBlocked IPv6', 'Map.get user (baseline)']) {
      expect(out).toMatch(new RegExp(`${row.replace(/[()]/g, '\\$&')}\\s+[\\d.]+ \\(`));
    }
  }, 90_000);
});
