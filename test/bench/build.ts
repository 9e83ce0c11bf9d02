import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/wire/protos.js';

export const ROOT = packageRoot();
export const DIST_BENCH = join(ROOT, 'dist', 'bench');

let built: Promise<void> | undefined;

/**
 * The harness runs its children (server, baseline, generator) as compiled JavaScript, so the
 * tests build dist/ first, as `npm run bench` does. Type errors elsewhere in the repo do not
 * stop tsc from emitting, so only a missing output fails.
 */
export function ensureBuilt(): Promise<void> {
  // `npm test` builds before vitest starts; building again here would rewrite dist/ under the
  // server processes other test files are starting at the same moment (a half-written module).
  if (existsSync(join(DIST_BENCH, 'run.js')) && process.env.npm_lifecycle_event === 'test') return Promise.resolve();
  built ??= promisify(execFile)(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--noEmit', 'false', '--outDir', 'dist'], { cwd: ROOT })
    .catch(() => undefined)
    .then(() => {
      if (!existsSync(join(DIST_BENCH, 'run.js'))) throw new Error('build produced no dist/bench/run.js');
    });
  return built;
}
