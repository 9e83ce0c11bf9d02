import cluster from 'node:cluster';
import { App } from '../app.js';
import { ENV_VARS, loadConfig } from '../config/load.js';
import { createLoggers } from '../observability/logger.js';
import { announceReady, clusterMetricsText, shareAcrossWorkers, startCluster } from '../runtime/workers.js';
import { parse, usageFailed } from './args.js';
import { tuneHeap } from './heap-tuning.js';

const USAGE = `Usage: zt-authz serve [--config FILE] [--grpc HOST:PORT] [--http HOST:PORT] [--redis URL] [--workers N] [--ui] [--dev]

Runs the envoy.service.auth.v3.Authorization/Check gRPC server (default 127.0.0.1:9191) and the
HTTP port (default 127.0.0.1:8181: /healthz, /readyz, /metrics, /authz). Without --config it runs
the embedded demo config with the bundled DEVELOPMENT keys and in-memory state.

--dev turns on the bundled DEVELOPMENT keys for a config file too (a file alone never can). The keys
are public, so it is refused unless every listener is on loopback.

--workers N (or ZT_AUTHZ_WORKERS) runs N processes behind the same ports (node:cluster): connections,
not requests, are balanced, so Envoy needs at least N connections to use them all. Use the
in-memory store only with 1 worker (each worker would have its own state); Redis state is shared.

--ui (or server.http.ui: true) serves the live security page at /ui/ on the HTTP port. On a
listener that is not loopback it needs ZT_AUTHZ_UI_TOKEN, which the page then asks for.

Environment (flags win over environment, environment wins over the file):
${Object.entries(ENV_VARS)
  .map(([k, v]) => `  ${k.padEnd(20)} ${v}`)
  .join('\n')}

Signals: SIGTERM/SIGINT drain and exit within server.shutdown_grace_ms (a second one exits at once);
SIGHUP reloads the config file (an invalid file is refused, the running policy keeps serving).
`;

export async function runServe(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parse(argv, {
      config: { type: 'string' },
      grpc: { type: 'string' },
      http: { type: 'string' },
      redis: { type: 'string' },
      workers: { type: 'string' },
      ui: { type: 'boolean' },
      dev: { type: 'boolean', default: false },
    }));
  } catch (err) {
    return usageFailed(err, USAGE);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const loadOptions = { flags: { grpc: values.grpc, http: values.http, redis: values.redis, ui: values.ui }, dev: values.dev };
  const loaded = loadConfig({ ...loadOptions, file: values.config });
  if (!loaded.ok) {
    process.stderr.write(`zt-authz: invalid config ${loaded.source}:\n`);
    for (const e of loaded.errors) process.stderr.write(`  - ${e}\n`);
    return 1;
  }
  const workers = Number(values.workers ?? process.env.ZT_AUTHZ_WORKERS ?? 1);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
    process.stderr.write('--workers must be a whole number from 1 to 64\n');
    return 2;
  }
  tuneHeap();
  const { logger, decisions } = createLoggers(loaded.config.log);
  if (workers > 1 && loaded.config.state.backend === 'memory' && cluster.isPrimary) {
    // Only the supervising process says it, not each worker again.
    logger.warn(
      { workers, backend: 'memory' },
      `--workers ${workers} WITH THE IN-MEMORY STORE: each worker keeps its own suspensions, blocks, risk scores and auto-remediation counts, ` +
        'so a block raised in one worker does not apply in the others. Use Redis state (--redis URL) with more than one worker.',
    );
  }
  const role = startCluster({ workers, logger, shutdownGraceMs: loaded.config.server.shutdown_grace_ms });
  // The primary only supervises: it forwards signals and exits when the workers do.
  if (role.role === 'primary') return -1;
  const configFile = values.config ?? (process.env.ZT_AUTHZ_CONFIG || undefined);
  const app = await App.start(loaded, {
    logger,
    decisionLogger: decisions,
    configFile,
    watchConfig: configFile !== undefined,
    metricsText: clusterMetricsText,
    loadOptions,
    uiAccessToken: process.env.ZT_AUTHZ_UI_TOKEN || undefined,
    shareAcrossWorkers: role.role === 'worker' ? shareAcrossWorkers : undefined,
  });
  if (role.role === 'worker') {
    announceReady({ grpc: app.grpcAddress, http: app.httpAddress });
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      logger.flush();
      process.exit(1);
    }
    stopping = true;
    const grace = loaded.config.server.shutdown_grace_ms;
    // Whatever happens inside shutdown, the process is gone by grace + 1 s.
    setTimeout(() => {
      logger.error('shutdown overran the grace period; forcing exit');
      logger.flush();
      process.exit(1);
    }, grace + 1000).unref();
    app.shutdown(grace).then(
      () => {
        logger.flush();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    if (configFile === undefined) {
      logger.warn('SIGHUP ignored: running on the embedded config, nothing to reload');
      return;
    }
    void app.reload();
  });
  // The exception barrier per call keeps faults inside a request; anything that escapes is a bug,
  // and a sidecar that keeps running in an unknown state is worse than a restart (Envoy fails closed).
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception; exiting');
    logger.flush();
    process.exit(70);
  });
  process.on('unhandledRejection', (err) => {
    logger.error({ err }, 'unhandled rejection');
  });
  return -1;
}
