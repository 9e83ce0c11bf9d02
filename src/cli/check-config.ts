import { environmentWarnings } from '../config/environment-lint.js';
import { loadConfig } from '../config/load.js';
import { compilePolicy } from '../policy/index.js';
import { parse, usageFailed } from './args.js';

const USAGE = `Usage: zt-authz check-config [--dev] FILE
       zt-authz check-config [--dev] --config FILE

Validates FILE against the config schema and the rules that span sections, and prints every error
with its path. Warnings (printed, exit 0) are what depends on where the server runs: a jwks_file
that does not exist here, an hs256_secret_env that is unset here, policy oddities.
--dev validates as 'serve --dev' would (development keys, loopback listeners only).
Exit status: 0 valid, 1 invalid, 2 usage.
`;

export function runCheckConfig(argv: string[]): number {
  try {
    const { values, positionals } = parse(argv, { config: { type: 'string' }, dev: { type: 'boolean', default: false } }, true);
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const files = [...positionals, ...(values.config !== undefined ? [values.config] : [])];
    if (files.length !== 1) {
      process.stderr.write(`check-config: expected one FILE\n\n${USAGE}`);
      return 2;
    }
    const result = loadConfig({ file: files[0], env: {}, dev: values.dev });
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
    const warnings = [...environmentWarnings(result.config, process.env), ...policy.warnings];
    for (const w of warnings) process.stdout.write(`  warning: ${w}\n`);
    return 0;
  } catch (err) {
    return usageFailed(err, USAGE);
  }
}
