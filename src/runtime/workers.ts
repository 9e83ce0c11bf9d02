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
  /** worker → primary: gather `channel` from every worker; primary → workers: send yours; … */
  collectRequest: 'zt-authz:collect-request',
  collect: 'zt-authz:collect',
  collectReply: 'zt-authz:collect-reply',
  /** primary → the requesting worker: every worker's reply. */
  collectResult: 'zt-authz:collect-result',
} as const;

interface Message {
  readonly type: string;
  readonly id?: number;
  readonly channel?: string;
  readonly addresses?: WorkerAddresses;
  readonly data?: unknown;
}

/** A worker that dies this soon after its fork counts as a failed start. */
const QUICK_DEATH_MS = 5000;
const MAX_QUICK_DEATHS = 3;
/** How long the primary waits for every worker's reply; a slow or dead worker is left out. */
const COLLECT_TIMEOUT_MS = 2000;

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
    } else if (m.type === MSG.collectRequest && typeof m.id === 'number' && typeof m.channel === 'string') {
      collect(w, m.id, m.channel);
    } else if (m.type === MSG.collectReply && typeof m.id === 'number') {
      const p = pending.get(m.id);
      if (!p) return;
      p.replies.push(m.data);
      if (p.replies.length >= p.expected) finishCollect(m.id);
    }
  };

  const collect = (requester: Worker, requestId: number, channel: string) => {
    const live = Object.values(cluster.workers ?? {}).filter((x): x is Worker => x !== undefined && x.isConnected());
    const id = nextCollectId++;
    const timer = setTimeout(() => finishCollect(id), COLLECT_TIMEOUT_MS);
    pending.set(id, { requester, requestId, replies: [], expected: live.length, timer });
    for (const x of live) x.send({ type: MSG.collect, id, channel });
  };

  const finishCollect = (id: number) => {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    clearTimeout(p.timer);
    if (p.requester.isConnected()) p.requester.send({ type: MSG.collectResult, id: p.requestId, data: p.replies });
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

type Collector = () => unknown;
const collectors = new Map<string, Collector>();
const waiting = new Map<number, { resolve: (replies: unknown[]) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
let nextRequest = 1;
let listening = false;

function listen(): void {
  if (listening) return;
  listening = true;
  process.on('message', (m: Message) => {
    if (!m || typeof m.type !== 'string') return;
    if (m.type === MSG.collect && typeof m.id === 'number' && typeof m.channel === 'string') {
      const id = m.id;
      const local = collectors.get(m.channel);
      Promise.resolve()
        .then(() => local?.())
        .then(
          (data) => process.send?.({ type: MSG.collectReply, id, data: data ?? null }),
          () => process.send?.({ type: MSG.collectReply, id, data: null }),
        );
    } else if (m.type === MSG.collectResult && typeof m.id === 'number') {
      const w = waiting.get(m.id);
      if (!w) return;
      waiting.delete(m.id);
      clearTimeout(w.timer);
      w.resolve(Array.isArray(m.data) ? m.data.filter((d) => d !== null) : []);
    }
  });
}

/**
 * In a cluster worker: registers what this worker answers on `channel`, and returns a function
 * that gathers every worker's answer (its own included) through the primary. Outside a cluster
 * the returned function answers with this process's own value alone.
 */
export function shareAcrossWorkers(channel: string, local: Collector): () => Promise<unknown[]> {
  if (!cluster.isWorker || !process.send) return async () => [await local()];
  collectors.set(channel, local);
  listen();
  return () =>
    new Promise<unknown[]>((resolve, reject) => {
      const id = nextRequest++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`cluster ${channel} timed out`));
      }, COLLECT_TIMEOUT_MS + 1000);
      waiting.set(id, { resolve, reject, timer });
      process.send!({ type: MSG.collectRequest, id, channel });
    });
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
  const gather = shareAcrossWorkers('metrics', registry.getMetricsAsJSON.bind(registry));
  return async () => AggregatorRegistry.aggregate((await gather()) as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics();
}
