/**
 * In-process cost of one cached Check, stage by stage (decode, check, encode) on the bench's
 * request, against protobufjs decoding the same bytes (the no-op baseline's only work): time per
 * call and bytes allocated per call. Bytes do not drift with a noisy machine; time does, so read
 * the median of the rounds. Prints figures; asserts nothing.
 *   npm run build && taskset -c 1 node --expose-gc dist/bench/hot-path.js [rounds]
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getHeapStatistics } from 'node:v8';
import { App } from '../src/app.js';
import { validate } from '../src/config/load.js';
import { WantedHeaders } from '../src/wire/wanted-headers.js';
import { decodeCheckRequest } from '../src/wire/decode.js';
import { createLogger } from '../src/observability/logger.js';
import { EnvoyResponder } from '../src/response/envoy.js';
import { protobufjsDecodeCheckRequest } from '../test/helpers/reference-codecs.js';
import { benchConfig } from './lib/config.js';
import { benchRequest } from './lib/requests.js';
import { median } from './lib/stats.js';
import { mintToken, userClaims } from './lib/tokens.js';
import { grpcFrame } from './lib/wire.js';

const ROUNDS = Number(process.argv[2] ?? 8);
const CALLS = 200_000;
const gc = (globalThis as { gc?: () => void }).gc;

const loaded = validate(benchConfig({ decisionLog: 'none' }), 'bench', false);
if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
const app = await App.start({ ...loaded, config: { ...loaded.config, server: { ...loaded.config.server, http: { ...loaded.config.server.http, address: '' } } } }, { logger: createLogger('error') });
while (!app.ready()) await new Promise((r) => setTimeout(r, 20));

// The same server with OpenTelemetry on: every Check becomes a span, batched to a local OTLP/HTTP
// receiver that answers 200 (spans past the batch queue's 2,048 are dropped, as in production).
const receiver = createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const traced = validate({ ...benchConfig({ decisionLog: 'none' }), tracing: { otlp_endpoint: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`, export_interval_ms: 1000 } }, 'bench', false);
if (!traced.ok) throw new Error(traced.errors.join('\n'));
const tracedApp = await App.start({ ...traced, config: { ...traced.config, server: { ...traced.config.server, grpc: { ...traced.config.server.grpc, address: '127.0.0.1:0' }, http: { ...traced.config.server.http, address: '' } } } }, { logger: createLogger('error') });
while (!tracedApp.ready()) await new Promise((r) => setTimeout(r, 20));

const body = grpcFrame(benchRequest({ token: mintToken('RS256', userClaims('alice')) })).subarray(5);
const wanted = WantedHeaders.of(app.config);
const envoy = new EnvoyResponder(app.config.policy.headers);
const protobufjs = protobufjsDecodeCheckRequest;
const msg = decodeCheckRequest(body, wanted);
const decision = app.pipeline.decideWire(msg, Number.POSITIVE_INFINITY);
if (decision instanceof Promise || !decision.allow) throw new Error('the bench request is not a synchronous allow');

const stages: Record<string, () => unknown> = {
  decode: () => decodeCheckRequest(body, wanted),
  check: () => app.pipeline.decideWire(msg, Number.POSITIVE_INFINITY),
  encode: () => envoy.encode(decision),
  'check, OpenTelemetry spans on': () => tracedApp.pipeline.decideWire(msg, Number.POSITIVE_INFINITY),
  'whole Check': () => envoy.encode(app.pipeline.decideWire(decodeCheckRequest(body, wanted), Number.POSITIVE_INFINITY) as typeof decision),
  'protobufjs decode (baseline)': () => protobufjs(body),
};

let sink: unknown;
function timePerCall(fn: () => unknown): number {
  const t = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) sink = fn();
  return Number(process.hrtime.bigint() - t) / CALLS / 1000;
}

/** Heap growth over 500 calls whose results are kept, after a full GC: the least of 5 tries. */
function bytesPerCall(fn: () => unknown): number {
  const keep: unknown[] = new Array(500);
  let best = Number.POSITIVE_INFINITY;
  for (let k = 0; k < 5; k++) {
    gc?.();
    const before = getHeapStatistics().used_heap_size;
    for (let i = 0; i < keep.length; i++) keep[i] = fn();
    const grown = (getHeapStatistics().used_heap_size - before) / keep.length;
    if (grown > 0 && grown < best) best = grown;
  }
  return best;
}

const times: Record<string, number[]> = {};
for (let r = 0; r < ROUNDS; r++) for (const [name, fn] of Object.entries(stages)) (times[name] ??= []).push(timePerCall(fn));
process.stdout.write(`cached Check, in process, ${ROUNDS} rounds of ${CALLS.toLocaleString('en-US')} calls${gc ? '' : ' (run with --expose-gc for exact bytes)'}\n\n`);
process.stdout.write(`${'stage'.padEnd(30)} ${'µs/call (median)'.padStart(17)} ${'range'.padStart(13)} ${'bytes/call'.padStart(11)}\n`);
for (const [name, fn] of Object.entries(stages)) {
  const t = times[name]!;
  const range = `${Math.min(...t).toFixed(2)}-${Math.max(...t).toFixed(2)}`;
  process.stdout.write(`${name.padEnd(30)} ${median(t).toFixed(2).padStart(17)} ${range.padStart(13)} ${Math.round(bytesPerCall(fn)).toLocaleString('en-US').padStart(11)}\n`);
}
void sink;
await app.shutdown(100);
await tracedApp.shutdown(100);
receiver.close();
process.exit(0);
