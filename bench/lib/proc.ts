import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';

/** Children announce their addresses on stdout with this prefix and one line of JSON. */
export const READY_PREFIX = 'BENCH-READY ';

export interface CpuPlan {
  /** CPU list for taskset (e.g. "1" or "1-3"), undefined when not pinned. */
  readonly server: string | undefined;
  readonly load: string | undefined;
  readonly description: string;
}

/**
 * The load generator gets CPU 0 and the server(s) the rest, so they do not fight over a core.
 * With one CPU (or --no-pin) nothing is pinned and the figures say so.
 */
export function cpuPlan(pin: boolean): CpuPlan {
  const n = availableParallelism();
  if (!pin || n < 2) return { server: undefined, load: undefined, description: `unpinned (${n} CPU${n === 1 ? '' : 's'})` };
  const server = n === 2 ? '1' : `1-${n - 1}`;
  return { server, load: '0', description: `load generator on CPU 0, server on CPU ${server}` };
}

export function pinned(cpus: string | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  return cpus === undefined ? [cmd, [...args]] : ['taskset', ['-c', cpus, cmd, ...args]];
}

export interface Child<T> {
  readonly process: ChildProcess;
  readonly ready: Promise<T>;
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

/**
 * Starts `node script args` (optionally pinned) and resolves `ready` with the JSON the child
 * prints after READY_PREFIX. Everything else the child writes goes to `logFile`.
 */
export function startNodeChild<T>(script: string, args: readonly string[], opts: { cpus?: string | undefined; logFile: string; nodeArgs?: readonly string[]; env?: NodeJS.ProcessEnv; readyTimeoutMs?: number; onStderrLine?: (line: string) => void }): Child<T> {
  const [cmd, argv] = pinned(opts.cpus, process.execPath, [...(opts.nodeArgs ?? []), script, ...args]);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  const log: WriteStream = createWriteStream(opts.logFile, { flags: 'a' });
  if (opts.onStderrLine) {
    const onLine = opts.onStderrLine;
    createInterface({ input: child.stderr! }).on('line', (line) => {
      onLine(line);
      log.write(line + '\n');
    });
  } else {
    child.stderr!.pipe(log, { end: false });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready within ${opts.readyTimeoutMs ?? 30_000} ms (log: ${opts.logFile})`)), opts.readyTimeoutMs ?? 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith(READY_PREFIX)) {
        clearTimeout(timer);
        resolve(JSON.parse(line.slice(READY_PREFIX.length)) as T);
      } else {
        log.write(line + '\n');
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before it was ready (log: ${opts.logFile})`));
    });
  });
  ready.catch(() => undefined);
  return {
    process: child,
    ready,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await new Promise<void>((r) => log.end(() => r()));
    },
  };
}

/** Runs a command to completion, collecting stdout and stderr. */
export function runCommand(cmd: string, args: readonly string[], opts: { timeoutMs: number }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
