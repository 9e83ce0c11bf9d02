/**
 * The pure-Node load generator, for request mixes h2load cannot express (a different body per
 * request: distinct tokens, mixed users and reasons). It speaks gRPC over node:http2 with
 * pre-encoded frames and checks grpc-status, so it is far cheaper than a grpc-js client, but it
 * is still JavaScript on one core: expect it to saturate before a fast server does. Figures
 * from this generator are therefore compared only with the baseline driven by the same generator.
 *
 * Usage: node node-load-child.js SPEC.json   (prints READY_PREFIX + NodeLoadResult JSON)
 */
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { readFileSync } from 'node:fs';
import { READY_PREFIX } from './proc.js';
import { CHECK_PATH } from './wire.js';

export interface NodeLoadSpec {
  readonly target: string;
  /** Concatenated gRPC frames (they are self-delimiting); sent in order, cycling. */
  readonly framesFile: string;
  readonly connections: number;
  /** Requests in flight per connection. */
  readonly concurrency: number;
  readonly requests: number;
  /** Requests sent before timing starts (also in order, counted in `warmup`). */
  readonly warmup: number;
  /** Keep per-request latencies (µs) for percentiles. */
  readonly latencies: boolean;
  readonly progressEvery?: number;
}

export interface NodeLoadResult {
  readonly sent: number;
  readonly ok: number;
  readonly rpcErrors: number;
  readonly firstError?: string;
  readonly seconds: number;
  readonly reqPerSec: number;
  /** File holding the number of times each frame was sent (warm-up included), a raw Uint32Array. */
  readonly perFrameFile: string;
  readonly latencyFile?: string;
}

function splitFrames(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off + 5 <= buf.length) {
    const len = buf.readUInt32BE(off + 1);
    out.push(buf.subarray(off, off + 5 + len));
    off += 5 + len;
  }
  return out;
}

const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as NodeLoadSpec;
const frames = splitFrames(readFileSync(spec.framesFile));
if (frames.length === 0) throw new Error('no frames');
const perFrame = new Uint32Array(frames.length);
const latencies = spec.latencies ? new Float64Array(spec.requests) : undefined;
const headers = {
  [constants.HTTP2_HEADER_METHOD]: 'POST',
  [constants.HTTP2_HEADER_PATH]: CHECK_PATH,
  'content-type': 'application/grpc',
  te: 'trailers',
};
const total = spec.warmup + spec.requests;
let next = 0;
let done = 0;
let ok = 0;
let rpcErrors = 0;
let firstError: string | undefined;
let timedStart = 0;
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

const sessions: ClientHttp2Session[] = [];
for (let i = 0; i < spec.connections; i++) {
  const s = connect(`http://${spec.target}`);
  s.on('error', (err) => {
    firstError ??= `session: ${err.message}`;
  });
  sessions.push(s);
}
await Promise.all(sessions.map((s) => new Promise<void>((resolve, reject) => {
  s.once('connect', () => resolve());
  s.once('error', reject);
})));

let finish!: () => void;
const finished = new Promise<void>((r) => (finish = r));

function fire(session: ClientHttp2Session): void {
  if (next >= total) return;
  const i = next++;
  if (i === spec.warmup) timedStart = nowUs();
  const f = i % frames.length;
  perFrame[f]!++;
  const started = latencies && i >= spec.warmup ? nowUs() : 0;
  let status: string | undefined;
  const req = session.request(headers);
  req.on('response', (h) => {
    // A trailers-only response carries grpc-status in the headers.
    const s = h['grpc-status'];
    if (s !== undefined) status = String(s);
  });
  req.on('trailers', (t) => {
    status = String(t['grpc-status']);
  });
  req.on('data', () => undefined);
  const complete = (err?: Error) => {
    if (status === '0' && !err) ok++;
    else {
      rpcErrors++;
      firstError ??= err ? err.message : `grpc-status ${status}`;
    }
    if (latencies && i >= spec.warmup) latencies[i - spec.warmup] = nowUs() - started;
    done++;
    if (spec.progressEvery && done % spec.progressEvery === 0) process.stderr.write(`PROGRESS ${done}/${total}\n`);
    if (done === total) finish();
    else fire(session);
  };
  req.on('end', () => complete());
  req.on('error', (err) => complete(err));
  req.end(frames[f]);
}

if (spec.warmup === 0) timedStart = nowUs();
for (const s of sessions) for (let c = 0; c < spec.concurrency; c++) fire(s);
await finished;
const seconds = (nowUs() - timedStart) / 1e6;
for (const s of sessions) s.close();
let latencyFile: string | undefined;
if (latencies) {
  latencyFile = `${spec.framesFile}.latency`;
  const { writeFileSync } = await import('node:fs');
  writeFileSync(latencyFile, Buffer.from(latencies.buffer, latencies.byteOffset, latencies.byteLength));
}
const perFrameFile = `${spec.framesFile}.perframe`;
{
  const { writeFileSync } = await import('node:fs');
  writeFileSync(perFrameFile, Buffer.from(perFrame.buffer, perFrame.byteOffset, perFrame.byteLength));
}
const result: NodeLoadResult = {
  sent: total,
  ok,
  rpcErrors,
  ...(firstError ? { firstError } : {}),
  seconds,
  reqPerSec: spec.requests / seconds,
  perFrameFile,
  ...(latencyFile ? { latencyFile } : {}),
};
// stdout is a pipe (asynchronous): exit only once the line is out.
process.stdout.write(`${READY_PREFIX}${JSON.stringify(result)}\n`, () => process.exit(0));
