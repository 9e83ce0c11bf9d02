import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DIST_BENCH, ensureBuilt } from './build.js';

describe('bench/ui-overhead.ts', () => {
  it('prints the page-on cost of an allow and a deny against the page-off baseline of the same run', async () => {
    await ensureBuilt();
    const { stdout } = await promisify(execFile)(process.execPath, [join(DIST_BENCH, 'ui-overhead.js'), '2', '2000'], { timeout: 60_000 });
    for (const row of ['cached allow', 'deny (no token)']) {
      expect(stdout).toMatch(new RegExp(`${row.replace(/[()]/g, '\\$&')}\\s+[\\d.]+\\s+[\\d.]+\\s+[\\d.]+×`));
    }
  }, 90_000);
});
