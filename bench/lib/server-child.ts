/**
 * The server under test, as its own (pinned) process: the real App on the config the harness
 * wrote, optionally as a node:cluster of workers (src/runtime/workers.ts, as `serve --workers`).
 * Usage: node server-child.js SPEC.json   where SPEC is a ServerSpec.
 */
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { App } from '../../src/app.js';
import { validate } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { announceReady, clusterMetricsText, startCluster } from '../../src/runtime/workers.js';
import { tuneHeap } from '../../src/cli/heap-tuning.js';
import { READY_PREFIX } from './proc.js';

export interface StateSeed {
  readonly suspend?: readonly string[];
  readonly block?: readonly string[];
  readonly risk?: readonly { sub: string; score: number }[];
}

export interface ServerSpec {
  readonly config: ConfigInput;
  readonly workers: number;
  readonly seed?: StateSeed;
}

export interface ServerReady {
  readonly grpc: string;
  readonly http: string;
  readonly pid: number;
  readonly workers: number;
}

// As `serve` does.
tuneHeap();
const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as ServerSpec;
const loaded = validate(spec.config, 'bench', false);
if (!loaded.ok) {
  process.stderr.write(`bench server config invalid:\n${loaded.errors.join('\n')}\n`);
  process.exit(2);
}
const logger = createLogger(loaded.config.log.level, pino.destination({ dest: 2, sync: false }));
const role = startCluster({ workers: spec.workers, logger, shutdownGraceMs: 2000 });

if (role.role === 'primary') {
  const addresses = await role.ready;
  const first = addresses[0]!;
  process.stdout.write(`${READY_PREFIX}${JSON.stringify({ grpc: first.grpc, http: first.http ?? '', pid: process.pid, workers: spec.workers } satisfies ServerReady)}\n`);
} else {
  const app = await App.start(loaded, { logger, metricsText: clusterMetricsText });
  const until = Date.now() + 20_000;
  while (!app.ready()) {
    if (Date.now() > until) {
      process.stderr.write(`server not ready after 20 s: ${JSON.stringify(app.readiness())}\n`);
      process.exit(3);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  // Memory state is per process, so every worker seeds itself; Redis writes are idempotent.
  const seed = spec.seed ?? {};
  for (const sub of seed.suspend ?? []) await app.state.suspendUser(sub, 3600, 'bench');
  for (const ip of seed.block ?? []) await app.state.blockIp(ip, 3600);
  for (const r of seed.risk ?? []) await app.state.setRisk(r.sub, r.score, 3600);
  if ((seed.suspend?.length ?? 0) + (seed.block?.length ?? 0) + (seed.risk?.length ?? 0) > 0) {
    // The Redis mirror learns of its own writes through invalidation; give it a moment.
    const probe = seed.suspend?.[0];
    const wait = Date.now() + 5000;
    while (probe !== undefined && app.state.userSuspended(probe, Date.now()) !== 'listed' && Date.now() < wait) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  announceReady({ grpc: app.grpcAddress, http: app.httpAddress });
  if (role.role === 'single') {
    process.stdout.write(`${READY_PREFIX}${JSON.stringify({ grpc: app.grpcAddress, http: app.httpAddress ?? '', pid: process.pid, workers: 1 } satisfies ServerReady)}\n`);
  }
  const stop = () => void app.shutdown(1000).then(() => process.exit(0), () => process.exit(1));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
