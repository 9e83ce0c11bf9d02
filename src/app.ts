import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Server as HttpServer } from 'node:http';
import type * as grpc from '@grpc/grpc-js';
import type { Config } from './config/schema/index.js';
import { loadConfig, type LoadResult } from './config/load.js';
import { Checker } from './decision/checker.js';
import { DecisionEngine } from './decision/engine.js';
import { RemediationScope } from './decision/remediation-scope.js';
import { createDecisionIds } from './decision/ids.js';
// authenticator.js, not index.js: the server needs no jose (only `zt-authz token` signs with it).
import { createAuthenticator } from './identity/authenticator.js';
import type { Authenticator } from './identity/types.js';
import { compileCidrs } from './normalize/cidr.js';
import { WantedHeaders } from './wire/wanted-headers.js';
import { createLoggers, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { compilePolicy } from './policy/index.js';
import type { CompiledPolicy } from './policy/types.js';
import { EnvoyResponder } from './response/envoy.js';
import { HttpResponder } from './response/http.js';
import { createStateStore } from './state/index.js';
import type { StateStore } from './state/types.js';
import { bindGrpc, createGrpcServer } from './transport/grpc-server.js';
import { HealthService } from './transport/health.js';
import { ADMIN_TOKEN_ENV, adminRefusal } from './transport/admin-endpoint.js';
import { createOpsServer, listenHttp, type ReadinessReport } from './transport/http-server.js';

export interface AppOptions {
  readonly logger?: Logger;
  /** Decision lines; defaults to `logger`. */
  readonly decisionLogger?: Logger;
  /** The file to reload from on SIGHUP / change; undefined for the embedded config. */
  readonly configFile?: string | undefined;
  /** Watch configFile for changes (Kubernetes ConfigMap updates). */
  readonly watchConfig?: boolean;
}

export interface ReloadOutcome {
  readonly ok: boolean;
  readonly hash: string;
  readonly errors?: readonly string[];
}

/** Everything a reload may swap, replaced as one object so a request never sees half of a reload. */
interface Active {
  readonly config: Config;
  readonly hash: string;
  readonly policy: CompiledPolicy;
  readonly engine: DecisionEngine;
  readonly checker: Checker;
  readonly envoy: EnvoyResponder;
  readonly http: HttpResponder;
  readonly wantedHeaders: WantedHeaders;
}

export class App {
  grpcAddress = '';
  httpAddress: string | undefined;
  private active!: Active;
  private authenticator: Authenticator;
  private grpcServer: grpc.Server | undefined;
  private httpServer: HttpServer | undefined;
  private health: HealthService;
  private watcher: FSWatcher | undefined;
  private draining = false;
  private readonly nextId = createDecisionIds();

  private constructor(
    loaded: Extract<LoadResult, { ok: true }>,
    readonly logger: Logger,
    readonly metrics: Metrics,
    readonly state: StateStore,
    private readonly opts: AppOptions,
  ) {
    this.authenticator = createAuthenticator(loaded.config.identity, { logger, metrics });
    this.active = this.build(loaded.config, loaded.hash);
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

  private build(config: Config, hash: string): Active {
    const policy = compilePolicy(config.policy);
    const engine = new DecisionEngine({
      authenticator: () => this.authenticator,
      state: this.state,
      policy: () => this.active.policy,
      nextId: this.nextId,
      remediation: new RemediationScope(compileCidrs(config.state.remediation.exempt)),
    });
    const checker = new Checker({
      engine: () => this.active.engine,
      metrics: this.metrics,
      logger: this.logger,
      decisionLogger: this.opts.decisionLogger ?? this.logger,
      decisionLog: config.log.decisions,
      trustedXffHops: config.network.trusted_xff_hops,
      defaultTimeoutMs: config.server.decision_timeout_ms,
    });
    this.metrics.configInfo.reset();
    this.metrics.configInfo.set({ hash }, 1);
    const shadowing = policy.shadowing;
    this.metrics.shadowMode.set(shadowing ? 1 : 0);
    for (const warning of policy.warnings) this.logger.warn({ hash }, `policy: ${warning}`);
    if (shadowing) {
      this.logger.warn(
        { hash, shadowed_checks: policy.shadowedChecks },
        'SHADOW MODE: these checks only log and count would-be denies (zt_authz_would_deny_total); requests they would deny are allowed',
      );
    }
    return {
      config,
      hash,
      policy,
      engine,
      checker,
      envoy: new EnvoyResponder(config.policy.headers),
      http: new HttpResponder(config.policy.headers),
      wantedHeaders: WantedHeaders.of(config),
    };
  }

  private async listen(): Promise<void> {
    const cfg = this.active.config.server;
    // Before anything binds: a too-short admin token is a startup error.
    const adminToken = process.env[ADMIN_TOKEN_ENV] || undefined;
    const adminOff = cfg.http.address === '' ? 'no HTTP listener' : adminRefusal(cfg.http.address, adminToken);
    this.grpcServer = createGrpcServer(cfg, {
      checker: () => this.active.checker,
      responder: () => this.active.envoy,
      health: this.health,
      logger: this.logger,
      wantedHeaders: () => this.active.wantedHeaders,
    });
    this.grpcAddress = await bindGrpc(this.grpcServer, cfg.grpc.address);
    if (cfg.http.address !== '') {
      if (adminOff !== undefined) this.logger.info(`admin endpoint off: ${adminOff}`);
      this.httpServer = createOpsServer({
        admin: adminOff === undefined ? { unblock: (t) => this.state.unblockIp(t), logger: this.logger, token: adminToken } : undefined,
        readiness: () => this.readiness(),
        registry: this.metrics.registry,
        logger: this.logger,
        draining: () => this.draining,
        authz: {
          prefix: cfg.http.authz_prefix,
          trustedProxies: compileCidrs(cfg.http.trusted_proxies),
          checker: () => this.active.checker,
          responder: () => this.active.http,
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

  get checker(): Checker {
    return this.active.checker;
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
    let next: Active;
    try {
      next = this.build(loaded.config, loaded.hash);
    } catch (err) {
      this.metrics.configReloads.inc({ outcome: 'rejected' });
      this.logger.error({ err }, 'config reload failed to compile; the previous policy keeps serving');
      return { ok: false, hash: this.active.hash, errors: [(err as Error).message] };
    }
    const old = this.active.config;
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
      const previous = this.authenticator;
      this.authenticator = fresh;
      previous.close();
    }
    for (const section of ['server', 'state'] as const) {
      if (JSON.stringify(old[section]) !== JSON.stringify(loaded.config[section])) {
        this.logger.warn({ section }, 'config section changed; it takes effect on restart');
      }
    }
    this.active = next;
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
    const grpcServer = this.grpcServer;
    const grpcDone = new Promise<void>((resolve) => {
      if (!grpcServer) return resolve();
      const force = setTimeout(() => {
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
    this.health.close();
    this.authenticator.close();
    await this.state.close().catch((err: unknown) => this.logger.warn({ err }, 'state close failed'));
    this.logger.info('stopped');
  }
}
