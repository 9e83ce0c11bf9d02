#!/usr/bin/env node
import { ADMIN_COMMANDS, runAdmin } from './admin.js';
import { VERSION } from '../observability/build-info.js';
import { runCheck } from './check.js';
import { runCheckConfig } from './check-config.js';
import { runConfigSchema, runDemoConfig } from './config-commands.js';
import { runExplain } from './explain.js';
import { runServe } from './serve.js';
import { runToken } from './token.js';

const USAGE = `zt-authz: zero-trust external authorization for Envoy and Istio

Usage: zt-authz <command> [options]

Commands:
  serve          run the ext_authz gRPC server (and the HTTP ops/authz port)
  check          send one Envoy-shaped Check to a running server and print its answer
  check-config   validate a config file and print every error
  config-schema  print the config file's JSON Schema (for editors)
  demo-config    print the embedded demo config as YAML, to start your own from
  explain        evaluate one request offline and print why it is allowed or denied
  token          DEVELOPMENT ONLY: sign a JWT with the bundled development key
  suspend, unsuspend, block, unblock, risk, list
                 manage Redis-held state (suspended users, blocked IPs/CIDRs, live risk)

Run 'zt-authz <command> --help' for a command's options; 'zt-authz --version' prints the version.
`;

const ADMIN: ReadonlySet<string> = new Set(ADMIN_COMMANDS);

// A reader that stops early (`zt-authz explain … | head -1`) closes the pipe: the rest of the output
// has nowhere to go, which is not an error of the command. Later writes are dropped and the command
// still ends with its own exit status.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.stdout.write = (() => true) as typeof process.stdout.write;
});

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return runServe(rest);
    case 'check':
      return runCheck(rest);
    case 'check-config':
      return runCheckConfig(rest);
    case 'config-schema':
      return runConfigSchema(rest);
    case 'demo-config':
      return runDemoConfig(rest);
    case 'explain':
      return runExplain(rest);
    case 'token':
      return runToken(rest);
    case '--version':
    case '-v':
    case 'version':
      process.stdout.write(`zt-authz ${VERSION} (node ${process.version})\n`);
      return 0;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      if (ADMIN.has(command)) return runAdmin(argv);
      process.stderr.write(`zt-authz: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // serve keeps running on its own handles; the other commands finish here.
    if (code !== -1) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`zt-authz: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
