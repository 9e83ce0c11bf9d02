import { pino, type Logger } from 'pino';

export type { Logger };

/** Tokens and cookies never reach a log line, whatever a caller passes. */
const REDACT = [
  'authorization',
  'cookie',
  'token',
  '*.authorization',
  '*.cookie',
  '*.token',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    { level, base: { svc: 'zt-authz' }, redact: { paths: REDACT, censor: '[redacted]' } },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger for tests and CLI commands that must stay quiet. */
export const silentLogger: Logger = pino({ level: 'silent' });
