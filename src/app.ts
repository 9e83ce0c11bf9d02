import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Server as HttpServer } from 'node:http';
import type { Registry } from 'prom-client';
import type { Config } from './config/schema/index.js';
import { loadConfig, type LoadResult } from './config/load.js';
import { DecisionPipeline } from './decision/pipeline.js';
import { DecisionEngine } from './decision/engine.js';
import { createDecisionIds } from './decision/ids.js';
// authenticator.js, not index.js: the server needs no jose (only `zt-authz token` signs with it).
import { createAuthenticator } from './identity/authenticator.js';
import type { Authenticator } from './identity/types.js';
import { compileCidrs, type CidrList } from './normalize/cidr.js';
import { RequestNormalizer } from './normalize/normalizer.js';
import { WantedHeaders } from './wire/wanted-headers.js';
import { createLoggers, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { compilePolicy } from './policy/index.js';
import type { CompiledPolicy } from './policy/types.js';
import { EnvoyResponder } from './response/envoy.js';
import { HttpResponder } from './response/http.js';
import { createStateStore } from './state/index.js';
import type { StateStore } from './state/types.js';
import { createGrpcServer, type ZtGrpcServer } from './transport/grpc-server.js';
import { HealthService } from './transport/health.js';
import { createOpsServer, listenHttp, type ReadinessReport } from './transport/http-server.js';

export interface AppOptions {
  readonly logger?: Logger;
  /** Decision lines; defaults to `logger`. */
  readonly decisionLogger?: Logger;
  /** The file to reload from on SIGHUP / change; undefined for the embedded config. */
  readonly configFile?: string | undefined;
  /** Watch configFile for changes (Kubernetes ConfigMap updates). */
  readonly watchConfig?: boolean;
  /** The /metrics body from the app's registry; defaults to the registry's own text (a cluster worker sums all workers). */
  readonly metricsText?: (registry: Registry) => () => Promise<string>;
}

export interface ReloadOutcome {
  readonly ok: boolean;
  readonly hash: string;
  readonly errors?: readonly string[];
}

/**
 * Everything a reload may swap, replaced as one object. A transport takes it once per request
 * (the gRPC decoder when the bytes arrive, the HTTP handler on entry) and the request is decoded,
 * decided and answered by that one config, however long it waits on a key refetch.
 */
interface Active {
  readonly config: Config;
  readonly hash: string;
  readonly authenticator: Authenticator;
  readonly policy: CompiledPolicy;
  readonly pipeline: DecisionPipeline;
  readonly envoy: EnvoyResponder;
  readonly http: HttpResponder;
  readonly wantedHeaders: WantedHeaders;
}

/** The parts of a config that compile without side effects (a failure leaves nothing behind). */
type Compiled = Omit<Active, 'authenticator' | 'pipeline'>;

export class App {
  grpcAddress = '';
  httpAddress: string | undefined;
  private active: Active;
  private grpcServer: ZtGrpcServer | undefined;
  private httpServer: HttpServer | undefined;
  private health: HealthService;
  private watcher: FSWatcher | undefined;
  private draining = false;
  private readonly nextId = createDecisionIds();
  private readonly trustedProxies: CidrList;

  private constructor(
    loaded: Extract<LoadResult, { ok: true }>,
    readonly logger: Logger,
    readonly metrics: Metrics,
    readonly state: StateStore,
    private readonly opts: AppOptions,
  ) {
    // server.* takes effect on restart only, trusted_proxies included.
    this.trustedProxies = compileCidrs(loaded.config.server.http.trusted_proxies);
    this.active = this.assemble(this.compile(loaded.config, loaded.hash), createAuthenticator(loaded.config.identity, { logger, metrics }));
    this.announce(this.active);
    this.health = new HealthService(() => this.ready() && !this.draining);
  }

  static async start(loaded: Extract<LoadResult, { ok: true }>, opts: AppOptions = {}): Promise<App> {
    const config = loaded.config;
    let logger = opts.logger;
    if (!logger) {
      const loggers = createLoggers(config.log.level);
      logger = loggers.logger;
      opts = { ...opts, decisionLogger: opts.decisionLogger ?? loggers.decisions };
    }
    const metrics = createMetrics();
    const state = createStateStore(config.state, { logger, metrics });
    const app = new App(loaded, logger, metrics, state, opts);
    await app.listen();
    if (loaded.embedded) {
      logger.warn(
        'DEVELOPMENT MODE: running on the embedded demo config with the bundled DEVELOPMENT key set. ' +
          'Anyone can mint tokens for these keys. Never use this outside a laptop; pass --config.',
      );
    }
    // Keys and state load in the background: until then /readyz is 503 and every Check denies.
    void app.authenticator.start();
    void state.start().catch((err: unknown) => logger.error({ err }, 'state backend failed to start; retrying in background'));
    if (opts.configFile && opts.watchConfig) app.watchConfig(opts.configFile);
    return app;
  }

  private get authenticator(): Authenticator {
    return this.active.authenticator;
  }

  private compile(config: Config, hash: string): Compiled {
    const policy = compilePolicy(config.policy);
    for (const warning of policy.warnings) this.logger.warn({ hash }, `policy: ${warning}`);
    return {
      config,
      hash,
      policy,
      envoy: new EnvoyResponder(config.policy.headers),
      http: new HttpResponder(config.policy.headers),
      wantedHeaders: WantedHeaders.of(config),
    };
  }

  private assemble(c: Compiled, authenticator: Authenticator): Active {
    const engine = new DecisionEngine({ authenticator, state: this.state, policy: c.policy, nextId: this.nextId });
    const pipeline = new DecisionPipeline({
      engine,
      normalizer: new RequestNormalizer({ trustedXffHops: c.config.network.trusted_xff_hops, trustedProxies: this.trustedProxies }),
      metrics: this.metrics,
      logger: this.logger,
      decisionLogger: this.opts.decisionLogger ?? this.logger,
      decisionLog: c.config.log.decisions,
      defaultTimeoutMs: c.config.server.decision_timeout_ms,
    });
    return { ...c, authenticator, pipeline };
  }

  /** Metrics and warnings of the config that now serves. */
  private announce(a: Active): void {
    this.metrics.configInfo.reset();
    this.metrics.configInfo.set({ hash: a.hash }, 1);
    const shadowing = a.policy.shadowing;
    this.metrics.shadowMode.set(shadowing ? 1 : 0);
    if (shadowing) {
      this.logger.warn(
        { hash: a.hash, shadowed_checks: a.policy.shadowedChecks },
        'SHADOW MODE: these checks only log and count would-be denies (zt_authz_would_deny_total); requests they would deny are allowed',
      );
    }
  }

  private async listen(): Promise<void> {
    const cfg = this.active.config.server;
    this.grpcServer = createGrpcServer(cfg, {
      serving: () => this.active,
      health: this.health,
      logger: this.logger,
    });
    this.grpcAddress = await this.grpcServer.bind(cfg.grpc.address);
    if (cfg.http.address !== '') {
      this.httpServer = createOpsServer({
        readiness: () => this.readiness(),
        metricsText: (this.opts.metricsText ?? ((r: Registry) => () => r.metrics()))(this.metrics.registry),
        metricsContentType: this.metrics.registry.contentType,
        logger: this.logger,
        draining: () => this.draining,
        authz: {
          prefix: cfg.http.authz_prefix,
          serving: () => this.active,
          decisionTimeoutMs: cfg.decision_timeout_ms,
        },
      });
      this.httpAddress = await listenHttp(this.httpServer, cfg.http.address);
    }
    this.logger.info({ grpc: this.grpcAddress, http: this.httpAddress, policy_hash: this.active.hash }, 'zt-authz listening');
  }

  get config(): Config {
    return this.active.config;
  }

  get policyHash(): string {
    return this.active.hash;
  }

  get pipeline(): DecisionPipeline {
    return this.active.pipeline;
  }

  ready(): boolean {
    return this.authenticator.ready() && this.state.health().ready;
  }

  readiness(): ReadinessReport {
    const state = this.state.health();
    return {
      ready: this.ready(),
      components: {
        keys: this.authenticator.ready() ? 'loaded' : 'not_loaded',
        state: { backend: state.backend, connected: state.connected, ready: state.ready, mirror_age_ms: Math.round(state.mirrorAgeMs) },
        policy_hash: this.active.hash,
      },
    };
  }

  /** Re-read the config file; an invalid file is refused and the running policy keeps serving. */
  async reload(): Promise<ReloadOutcome> {
    const loaded = loadConfig({ file: this.opts.configFile });
    return this.apply(loaded);
  }

  async apply(loaded: LoadResult): Promise<ReloadOutcome> {
    if (!loaded.ok) {
      this.metrics.configReloads.inc({ outcome: 'rejected' });
      this.logger.error({ source: loaded.source, errors: loaded.errors }, 'config reload rejected; the previous policy keeps serving');
      return { ok: false, hash: this.active.hash, errors: loaded.errors };
    }
    if (loaded.hash === this.active.hash) return { ok: true, hash: loaded.hash };
    let compiled: Compiled;
    try {
      compiled = this.compile(loaded.config, loaded.hash);
    } catch (err) {
      this.metrics.configReloads.inc({ outcome: 'rejected' });
      this.logger.error({ err }, 'config reload failed to compile; the previous policy keeps serving');
      return { ok: false, hash: this.active.hash, errors: [(err as Error).message] };
    }
    const old = this.active.config;
    let authenticator = this.authenticator;
    if (JSON.stringify(old.identity) !== JSON.stringify(loaded.config.identity)) {
      // New key sources must be loaded before they take over, or every check would deny meanwhile.
      const fresh = createAuthenticator(loaded.config.identity, { logger: this.logger, metrics: this.metrics });
      await fresh.start();
      if (!fresh.ready()) {
        fresh.close();
        this.metrics.configReloads.inc({ outcome: 'rejected' });
        this.logger.error('config reload rejected: the new identity section has no usable keys');
        return { ok: false, hash: this.active.hash, errors: ['identity: keys of the new config could not be loaded'] };
      }
      authenticator = fresh;
    }
    for (const section of ['server', 'state'] as const) {
      if (JSON.stringify(old[section]) !== JSON.stringify(loaded.config[section])) {
        this.logger.warn({ section }, 'config section changed; it takes effect on restart');
      }
    }
    const previous = this.active;
    const next = this.assemble(compiled, authenticator);
    this.active = next;
    // Requests that took the old snapshot finish under it; its authenticator then answers from
    // what it has (close stops only its refresh timers and cache).
    if (previous.authenticator !== authenticator) previous.authenticator.close();
    this.announce(next);
    this.metrics.configReloads.inc({ outcome: 'applied' });
    this.logger.info({ hash: next.hash }, 'config reloaded');
    return { ok: true, hash: next.hash };
  }

  private watchConfig(file: string): void {
    // Kubernetes swaps ConfigMap contents through a symlinked directory: watch the directory.
    let timer: NodeJS.Timeout | undefined;
    try {
      this.watcher = watch(dirname(file), (_event, name) => {
        if (name && name !== basename(file) && !name.startsWith('..')) return;
        clearTimeout(timer);
        timer = setTimeout(() => void this.reload(), 200);
      });
      this.watcher.on('error', (err) => this.logger.warn({ err }, 'config watch failed; SIGHUP still reloads'));
    } catch (err) {
      this.logger.warn({ err }, 'cannot watch the config file; SIGHUP still reloads');
    }
  }

  /**
   * Stop taking new work, let calls in flight finish, then close. Past the grace period the
   * remaining connections are cut.
   */
  async shutdown(graceMs = this.active.config.server.shutdown_grace_ms): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.watcher?.close();
    this.logger.info({ grace_ms: graceMs }, 'draining');
    // A health Watch never ends by itself and tryShutdown waits for every open stream: end the
    // watches (with a last NOT_SERVING) first, so the drain waits only for real calls.
    this.health.close();
    const grpcServer = this.grpcServer?.server;
    const grpcDone = new Promise<void>((resolve) => {
      if (!grpcServer) return resolve();
      const force = setTimeout(() => {
        this.logger.warn({ grace_ms: graceMs }, 'grace period over; cutting the calls still open');
        grpcServer.forceShutdown();
        resolve();
      }, graceMs);
      grpcServer.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    const httpServer = this.httpServer;
    const httpDone = new Promise<void>((resolve) => {
      if (!httpServer) return resolve();
      httpServer.close(() => resolve());
      httpServer.closeIdleConnections();
      setTimeout(() => {
        httpServer.closeAllConnections();
        resolve();
      }, graceMs).unref();
    });
    await Promise.all([grpcDone, httpDone]);
    this.authenticator.close();
    await this.state.close().catch((err: unknown) => this.logger.warn({ err }, 'state close failed'));
    this.logger.info('stopped');
  }
}
