/**
 * What the live page costs the hot path: the same cached allow and an unauthenticated deny through
 * `decideWire`, in process, on a server with the page off and one with it on, in alternating
 * rounds. Off, the checker pays one comparison per call; on, a typed-array increment (and, for a
 * deny, one ring slot). Prints figures against the page-off baseline of the same run; asserts nothing.
 *   npm run build && taskset -c 1 node dist/bench/ui-overhead.js [rounds] [calls]
 */
import { App } from '../src/app.js';
import { validate } from '../src/config/load.js';
import { createLogger } from '../src/observability/logger.js';
import { decodeCheckRequest } from '../src/wire/decode.js';
import { WantedHeaders } from '../src/wire/wanted-headers.js';
import { benchConfig } from './lib/config.js';
import { benchRequest } from './lib/requests.js';
import { median } from './lib/stats.js';
import { mintToken, userClaims } from './lib/tokens.js';
import { grpcFrame } from './lib/wire.js';

const ROUNDS = Number(process.argv[2] ?? 8);
const CALLS = Number(process.argv[3] ?? 200_000);

async function server(ui: boolean): Promise<App> {
  const cfg = benchConfig({ decisionLog: 'none' }) as { server?: Record<string, unknown> };
  cfg.server = { ...cfg.server, http: { address: '', ui } };
  const loaded = validate(cfg, 'bench', false);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const app = await App.start(loaded, { logger: createLogger('error') });
  while (!app.ready()) await new Promise((r) => setTimeout(r, 20));
  return app;
}

const off = await server(false);
const on = await server(true);
const wanted = WantedHeaders.of(off.config);
const requests = {
  'cached allow': decodeCheckRequest(grpcFrame(benchRequest({ token: mintToken('RS256', userClaims('alice')) })).subarray(5), wanted),
  'deny (no token)': decodeCheckRequest(grpcFrame(benchRequest({})).subarray(5), wanted),
};

let sink: unknown;
function timePerCall(app: App, msg: (typeof requests)[keyof typeof requests]): number {
  const pipeline = app.pipeline;
  const t = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) sink = pipeline.decideWire(msg, Number.POSITIVE_INFINITY);
  return Number(process.hrtime.bigint() - t) / CALLS / 1000;
}

process.stdout.write(`live page cost on the hot path, in process, ${ROUNDS} rounds of ${CALLS.toLocaleString('en-US')} calls\n\n`);
process.stdout.write(`${'request'.padEnd(18)} ${'page off µs'.padStart(12)} ${'page on µs'.padStart(11)} ${'on/off (median of rounds)'.padStart(26)} ${'range'.padStart(11)}\n`);
for (const [name, msg] of Object.entries(requests)) {
  const offT: number[] = [];
  const onT: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which goes first: the second of a pair runs on a warmer CPU.
    let o: number;
    let n: number;
    if (r % 2 === 0) {
      o = timePerCall(off, msg);
      n = timePerCall(on, msg);
    } else {
      n = timePerCall(on, msg);
      o = timePerCall(off, msg);
    }
    offT.push(o);
    onT.push(n);
    ratios.push(n / o);
  }
  const range = `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}`;
  process.stdout.write(
    `${name.padEnd(18)} ${median(offT).toFixed(2).padStart(12)} ${median(onT).toFixed(2).padStart(11)} ${(median(ratios).toFixed(3) + '×').padStart(26)} ${range.padStart(11)}\n`,
  );
}
void sink;
await Promise.all([off.shutdown(100), on.shutdown(100)]);
process.exit(0);
