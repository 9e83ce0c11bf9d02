import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from '../observability/logger.js';

/**
 * Multi-core serving with node:cluster. grpc-js (1.14) exposes no SO_REUSEPORT option and Node 20's
 * net has no reusePort, so the primary owns the listening sockets and hands connections to the
 * workers round-robin. Connections, not requests, are balanced: Envoy keeps few long-lived
 * HTTP/2 connections per upstream, so a sidecar with N workers needs at least N client
 * connections to use them all.
 *
 * Usage from `serve` (the primary never loads a config or serves; it only supervises):
 *
 *   const cl = startCluster({ workers, logger });
 *   if (cl.role === 'primary') return -1;                  // supervising; exits when the workers do
 *   const app = await App.start(loaded, { metricsText: clusterMetricsText }); // /metrics sums all workers
 *   announceReady({ grpc: app.grpcAddress, http: app.httpAddress });
 */

export type ClusterRole =
  | { readonly role: 'single' }
  | { readonly role: 'worker'; readonly id: number }
  | {
      readonly role: 'primary';
      /** Resolves once every worker has called announceReady (with their addresses). */
      readonly ready: Promise<readonly WorkerAddresses[]>;
    };

export interface WorkerAddresses {
  readonly grpc: string;
  readonly http?: string | undefined;
}

export interface ClusterOptions {
  readonly workers: number;
  readonly logger: Logger;
  /** Grace for workers to drain on SIGTERM before they are killed. */
  readonly shutdownGraceMs?: number;
}

const MSG = {
  ready: 'zt-authz:ready',
  metricsRequest: 'zt-authz:metrics-request',
  metricsCollect: 'zt-authz:metrics-collect',
  metricsReply: 'zt-authz:metrics-reply',
  metricsResult: 'zt-authz:metrics-result',
} as const;

interface Message {
  readonly type: string;
  readonly id?: number;
  readonly addresses?: WorkerAddresses;
  readonly metrics?: unknown;
  readonly text?: string;
  readonly error?: string;
}

/** A worker that dies this soon after its fork counts as a failed start. */
const QUICK_DEATH_MS = 5000;
const MAX_QUICK_DEATHS = 3;
const METRICS_COLLECT_TIMEOUT_MS = 2000;

/**
 * workers <= 1 runs in-process ('single'). Otherwise the primary forks the workers, restarts
 * any that crash, forwards SIGHUP (reload) and drains them on SIGTERM/SIGINT, then exits.
 */
export function startCluster(opts: ClusterOptions): ClusterRole {
  if (opts.workers <= 1 && cluster.isPrimary) return { role: 'single' };
  if (cluster.isWorker) return { role: 'worker', id: cluster.worker!.id };
  return runPrimary(opts);
}

function runPrimary(opts: ClusterOptions): ClusterRole {
  const { logger } = opts;
  const grace = opts.shutdownGraceMs ?? 10_000;
  const readyAddresses = new Map<number, WorkerAddresses>();
  let resolveReady!: (a: readonly WorkerAddresses[]) => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<readonly WorkerAddresses[]>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  ready.catch(() => undefined);
  let stopping = false;
  let exitCode = 0;
  let quickDeaths = 0;
  const forkedAt = new Map<number, number>();
  const pending = new Map<number, { requester: Worker; requestId: number; replies: unknown[]; expected: number; timer: NodeJS.Timeout }>();
  let nextCollectId = 1;

  const fork = () => {
    const w = cluster.fork();
    forkedAt.set(w.id, Date.now());
    w.on('message', (m: Message) => onMessage(w, m));
  };

  const onMessage = (w: Worker, m: Message) => {
    if (!m || typeof m.type !== 'string') return;
    if (m.type === MSG.ready && m.addresses) {
      readyAddresses.set(w.id, m.addresses);
      if (readyAddresses.size === opts.workers) resolveReady([...readyAddresses.values()]);
    } else if (m.type === MSG.metricsRequest && typeof m.id === 'number') {
      collectMetrics(w, m.id);
    } else if (m.type === MSG.metricsReply && typeof m.id === 'number') {
      const p = pending.get(m.id);
      if (!p) return;
      p.replies.push(m.metrics);
      if (p.replies.length >= p.expected) finishCollect(m.id);
    }
  };

  const collectMetrics = (requester: Worker, requestId: number) => {
    const live = Object.values(cluster.workers ?? {}).filter((x): x is Worker => x !== undefined && x.isConnected());
    const id = nextCollectId++;
    const timer = setTimeout(() => finishCollect(id), METRICS_COLLECT_TIMEOUT_MS);
    pending.set(id, { requester, requestId, replies: [], expected: live.length, timer });
    for (const x of live) x.send({ type: MSG.metricsCollect, id });
  };

  const finishCollect = (id: number) => {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    clearTimeout(p.timer);
    if (!p.requester.isConnected()) return;
    try {
      const text = AggregatorRegistry.aggregate(p.replies as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics();
      void text.then(
        (t) => p.requester.isConnected() && p.requester.send({ type: MSG.metricsResult, id: p.requestId, text: t }),
        (err: Error) => p.requester.isConnected() && p.requester.send({ type: MSG.metricsResult, id: p.requestId, error: err.message }),
      );
    } catch (err) {
      p.requester.send({ type: MSG.metricsResult, id: p.requestId, error: (err as Error).message });
    }
  };

  cluster.on('exit', (w, code, signal) => {
    readyAddresses.delete(w.id);
    const lived = Date.now() - (forkedAt.get(w.id) ?? 0);
    forkedAt.delete(w.id);
    if (stopping) {
      if (code !== 0) exitCode = 1;
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        logger.info({ code: exitCode }, 'all workers stopped');
        logger.flush();
        process.exit(exitCode);
      }
      return;
    }
    logger.error({ worker: w.id, code, signal, lived_ms: lived }, 'worker exited; restarting it');
    if (lived < QUICK_DEATH_MS && ++quickDeaths >= MAX_QUICK_DEATHS) {
      // A worker that cannot even start (port taken, bad config) would crash-loop forever.
      logger.fatal({ quick_deaths: quickDeaths }, 'workers keep dying at start; giving up');
      rejectReady(new Error('workers failed to start'));
      stop('startup-failure', 1);
      return;
    }
    fork();
  });

  const stop = (why: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    logger.info({ why }, 'stopping workers');
    const live = Object.values(cluster.workers ?? {}).filter((x): x is Worker => x !== undefined);
    if (live.length === 0) {
      logger.flush();
      process.exit(exitCode);
    }
    for (const w of live) w.process.kill('SIGTERM');
    // Workers enforce their own grace; this is the backstop for one that hangs anyway.
    setTimeout(() => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
      logger.flush();
      process.exit(1);
    }, grace + 2000).unref();
  };

  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  });

  for (let i = 0; i < opts.workers; i++) fork();
  logger.info({ workers: opts.workers }, 'cluster primary started');
  return { role: 'primary', ready };
}

/** Tells the primary this worker is listening. No-op outside a cluster worker. */
export function announceReady(addresses: WorkerAddresses): void {
  if (cluster.isWorker && process.send) process.send({ type: MSG.ready, addresses });
}

/**
 * The /metrics body of this process: in a cluster worker the sum over all workers (asked of the
 * primary), so a scrape that lands on any worker sees the whole sidecar; counters and histograms
 * add up, gauges follow prom-client's aggregator for each metric (sum by default). Outside a
 * cluster worker, the registry's own text. Call once per process (a worker answers the primary's
 * collect requests from then on).
 */
export function clusterMetricsText(registry: Registry): () => Promise<string> {
  if (!cluster.isWorker || !process.send) return () => registry.metrics();
  const waiting = new Map<number, { resolve: (t: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let next = 1;
  process.on('message', (m: Message) => {
    if (!m || typeof m.type !== 'string') return;
    if (m.type === MSG.metricsCollect && typeof m.id === 'number') {
      const id = m.id;
      registry.getMetricsAsJSON().then(
        (metrics) => process.send?.({ type: MSG.metricsReply, id, metrics }),
        () => process.send?.({ type: MSG.metricsReply, id, metrics: [] }),
      );
    } else if (m.type === MSG.metricsResult && typeof m.id === 'number') {
      const w = waiting.get(m.id);
      if (!w) return;
      waiting.delete(m.id);
      clearTimeout(w.timer);
      if (typeof m.text === 'string') w.resolve(m.text);
      else w.reject(new Error(m.error ?? 'cluster metrics failed'));
    }
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('cluster metrics timed out'));
      }, METRICS_COLLECT_TIMEOUT_MS + 1000);
      waiting.set(id, { resolve, reject, timer });
      process.send!({ type: MSG.metricsRequest, id });
    });
}
