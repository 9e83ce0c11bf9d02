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

/** How lines look and where they go; the `log:` config section has these fields. */
export interface LogFormat {
  readonly time?: 'epoch' | 'iso';
  readonly levels?: 'number' | 'label';
}
export interface LogOptions extends LogFormat {
  readonly level: string;
  readonly sink?: string;
  readonly decisions_sink?: string | undefined;
}

/** `stdout`, `stderr` or an absolute file path (appended to, created with its directory). */
export function logDestination(sink: string): pino.DestinationStream {
  if (sink === 'stdout') return pino.destination({ dest: 1, sync: false });
  if (sink === 'stderr') return pino.destination({ dest: 2, sync: false });
  return pino.destination({ dest: sink, sync: false, mkdir: true, append: true });
}

function formatOptions(f: LogFormat): pino.LoggerOptions {
  return {
    ...(f.time === 'iso' ? { timestamp: pino.stdTimeFunctions.isoTime } : {}),
    ...(f.levels === 'label' ? { formatters: { level: (label: string) => ({ level: label }) } } : {}),
  };
}

export function createLogger(level: string, destination?: pino.DestinationStream, format: LogFormat = {}): Logger {
  return pino(
    { level, base: { svc: 'zt-authz' }, redact: { paths: REDACT, censor: '[redacted]' }, ...formatOptions(format) },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/**
 * The general logger (redacting) and the decision logger, which skips redaction: redaction costs
 * 3–5 µs a line, and a decision line is built by the checker from fixed fields that never include
 * headers or tokens. Decisions go to `decisions_sink` when it names another sink than `sink`.
 */
export function createLoggers(opts: LogOptions, destination?: pino.DestinationStream): { logger: Logger; decisions: Logger } {
  const sink = opts.sink ?? 'stdout';
  const dest = destination ?? logDestination(sink);
  const decisionSink = opts.decisions_sink ?? sink;
  const decisionDest = destination ?? (decisionSink === sink ? dest : logDestination(decisionSink));
  return {
    logger: createLogger(opts.level, dest, opts),
    decisions: pino({ level: opts.level, base: { svc: 'zt-authz' }, ...formatOptions(opts) }, decisionDest),
  };
}

/** A logger for tests and CLI commands that must stay quiet. */
export const silentLogger: Logger = pino({ level: 'silent' });
