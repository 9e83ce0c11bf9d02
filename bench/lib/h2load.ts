import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHECK_PATH } from './wire.js';
import { pinned, runCommand } from './proc.js';

export interface H2loadLoad {
  /** Connections (h2load -c). */
  readonly clients: number;
  /** Concurrent streams per connection (h2load -m). */
  readonly streams: number;
  /** Measured seconds (-D) after warmUpS seconds of warm-up, or a request count (-n). */
  readonly durationS?: number;
  readonly warmUpS?: number;
  readonly requests?: number;
  /** Requests per second per client (--rps); unset means as fast as possible. */
  readonly rpsPerClient?: number;
}

export interface H2loadResult {
  readonly reqPerSec: number;
  readonly seconds: number;
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly errored: number;
  readonly timeout: number;
  readonly status2xx: number;
  /** 3xx + 4xx + 5xx responses. */
  readonly statusOther: number;
  readonly meanLatencyUs: number;
  /** Per-request latency in microseconds from --log-file, when asked for. */
  readonly latenciesUs?: Float64Array;
  readonly command: string;
}

/**
 * Drives one gRPC unary method with h2load: the same pre-encoded, length-prefixed request body
 * on every stream. h2load counts any HTTP 200 as success, grpc-status included, so the caller
 * must check real decisions elsewhere (the server's metrics).
 */
export async function runH2load(target: string, bodyFile: string, load: H2loadLoad, opts: { cpus: string | undefined; logFile?: string; timeoutS?: number }): Promise<H2loadResult> {
  const args = [
    '-c', String(load.clients),
    '-m', String(load.streams),
    '-t', '1',
    '-d', bodyFile,
    '-H', 'content-type: application/grpc',
    '-H', 'te: trailers',
  ];
  if (load.requests !== undefined) args.push('-n', String(load.requests));
  else args.push('-D', String(load.durationS ?? 10), '--warm-up-time', String(load.warmUpS ?? 1));
  if (load.rpsPerClient !== undefined) args.push('--rps', String(load.rpsPerClient));
  if (opts.logFile) args.push('--log-file', opts.logFile);
  args.push(`http://${target}${CHECK_PATH}`);
  const [cmd, argv] = pinned(opts.cpus, 'h2load', args);
  const budget = (opts.timeoutS ?? (load.durationS ?? 30) + (load.warmUpS ?? 1) + 30) * 1000;
  const out = await runCommand(cmd, argv, { timeoutMs: budget });
  const command = [cmd, ...argv].map((a) => (/[\s:]/.test(a) ? `'${a}'` : a)).join(' ');
  if (out.code !== 0) throw new Error(`h2load exited with ${out.code}: ${out.stderr || out.stdout}\n${command}`);
  const parsed = parseH2load(out.stdout);
  const latenciesUs = opts.logFile ? readLogFile(opts.logFile) : undefined;
  return latenciesUs ? { ...parsed, latenciesUs, command } : { ...parsed, command };
}

export function parseH2load(text: string): Omit<H2loadResult, 'command' | 'latenciesUs'> {
  const finished = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(text);
  const requests = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(text);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  const latency = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(text);
  if (!finished || !requests || !codes) throw new Error(`cannot parse h2load output:\n${text}`);
  const n = (i: number) => Number(requests[i]);
  const unit = (v: number, u: string) => (u === 'ms' ? v * 1000 : u === 's' ? v * 1e6 : v);
  return {
    seconds: finished[2] === 'ms' ? Number(finished[1]) / 1000 : Number(finished[1]),
    reqPerSec: Number(finished[3]),
    total: n(1),
    succeeded: n(4),
    failed: n(5),
    errored: n(6),
    timeout: n(7),
    status2xx: Number(codes[1]),
    statusOther: Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
    meanLatencyUs: latency ? unit(Number(latency[1]), latency[2]!) : Number.NaN,
  };
}

/** Column 3 of h2load's per-request log: microseconds from request start to end of response. */
function readLogFile(file: string): Float64Array {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out = new Float64Array(lines.length);
  let n = 0;
  for (const line of lines) {
    const t = line.split('\t');
    if (t.length < 3) continue;
    out[n++] = Number(t[2]);
  }
  rmSync(file, { force: true });
  return out.subarray(0, n);
}

/** Writes a body file for h2load -d. */
export function writeBody(dir: string, name: string, frame: Buffer): string {
  const file = join(dir, `${name}.bin`);
  writeFileSync(file, frame);
  return file;
}
