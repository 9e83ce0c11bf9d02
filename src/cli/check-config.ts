import { loadConfig } from '../config/load.js';
import { compilePolicy } from '../policy/index.js';
import { parse, usageFailed } from './args.js';

const USAGE = `Usage: zt-authz check-config FILE

Validates FILE against the config schema and prints every error with its path.
Exit status: 0 valid, 1 invalid, 2 usage.
`;

export function runCheckConfig(argv: string[]): number {
  try {
    const { values, positionals } = parse(argv, {}, true);
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (positionals.length !== 1) {
      process.stderr.write(USAGE);
      return 2;
    }
    const result = loadConfig({ file: positionals[0], env: {} });
    if (!result.ok) {
      process.stderr.write(`${result.source}: ${result.errors.length} error(s)\n`);
      for (const e of result.errors) process.stderr.write(`  - ${e}\n`);
      return 1;
    }
    let policy;
    try {
      // The schema cannot see inside CEL: compiling type-checks every `when` (errors carry their path).
      policy = compilePolicy(result.config.policy);
    } catch (err) {
      process.stderr.write(`${result.source}: 1 error(s)\n  - ${(err as Error).message}\n`);
      return 1;
    }
    process.stdout.write(`${result.source}: OK (policy hash ${result.hash})\n`);
    for (const w of policy.warnings) process.stdout.write(`  warning: ${w}\n`);
    return 0;
  } catch (err) {
    return usageFailed(err, USAGE);
  }
}
