import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {}

/** node:util parseArgs, with unknown options and stray positionals turned into usage errors. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function usageFailed(err: unknown, usage: string): number {
  if (err instanceof UsageError) {
    process.stderr.write(`${err.message}\n\n${usage}`);
    return 2;
  }
  throw err;
}
