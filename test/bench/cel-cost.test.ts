import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/wire/protos.js';

/** The README's cel-cost command runs and prints every figure (a smoke test, never a speed). */
describe('bench/cel-cost.ts', () => {
  it('prints the per-condition and per-policy figures', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', join(packageRoot(), 'dist/bench/cel-cost.js'), '1', '2000'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    for (const label of ['tenant', 'method-role', 'time-of-day', 'cidr', 'library getHours(zone)', '8 condition(s) + role + scope']) {
      expect(r.stdout).toMatch(new RegExp(`${label.replace(/[()+]/g, '\\$&')}\\s+\\d+ ns/call`));
    }
  });
});
