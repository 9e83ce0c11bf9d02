import { stringify } from 'yaml';
import { DEMO_CONFIG } from '../config/defaults.js';
import { configJsonSchema } from '../config/json-schema.js';
import { parse, usageFailed } from './args.js';

const SCHEMA_USAGE = `Usage: zt-authz config-schema

Prints the config file's JSON Schema (draft 2020-12), generated from the schema the loader uses.
Save it and point your editor at it, e.g. with the YAML language server:
  # yaml-language-server: $schema=./zt-authz.schema.json
`;

const DEMO_USAGE = `Usage: zt-authz demo-config

Prints the embedded demo config (what 'zt-authz serve' runs without --config) as YAML, to start
your own from. It has no issuers: add yours under identity.issuers, or run it as it is on a
laptop with 'zt-authz serve --dev --config FILE'.
`;

export function runConfigSchema(argv: string[]): number {
  try {
    const { values } = parse(argv, {});
    if (values.help) {
      process.stdout.write(SCHEMA_USAGE);
      return 0;
    }
    process.stdout.write(JSON.stringify(configJsonSchema(), null, 2) + '\n');
    return 0;
  } catch (err) {
    return usageFailed(err, SCHEMA_USAGE);
  }
}

export function runDemoConfig(argv: string[]): number {
  try {
    const { values } = parse(argv, {});
    if (values.help) {
      process.stdout.write(DEMO_USAGE);
      return 0;
    }
    const { identity: _dev, ...rest } = structuredClone(DEMO_CONFIG);
    const header = [
      '# yaml-language-server: $schema=./zt-authz.schema.json',
      '# The embedded demo config of zt-authz (zt-authz demo-config). Validate: zt-authz check-config FILE',
      '# identity: the demo runs on the bundled DEVELOPMENT keys, which a file cannot turn on.',
      '# Add your issuers, or run this file on a laptop with: zt-authz serve --dev --config FILE',
      '# identity:',
      '#   issuers:',
      '#     - issuer: https://idp.example.com/realms/prod',
      '#       audiences: [orders-api]',
      '#       keys: { discovery: true }',
      '',
    ].join('\n');
    process.stdout.write(header + stringify(rest));
    return 0;
  } catch (err) {
    return usageFailed(err, DEMO_USAGE);
  }
}
