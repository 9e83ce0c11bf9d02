import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Server as HttpServer } from 'node:http';
import type { Registry } from 'prom-client';
import type { Config } from './config/schema/index.js';
import { loadConfig, type LoadOptions, type LoadResult } from './config/load.js';
import { DecisionPipeline } from './decision/pipeline.js';
import { DecisionEngine } from './decision/engine.js';
import { RemediationScope } from './decision/remediation-scope.js';
import { createDecisionIds } from './decision/ids.js';
// authenticator.js, not index.js: the server needs no jose (only `zt-authz token` signs with it).
import { createAuthenticator } from './identity/authenticator.js';
import type { Authenticator } from './identity/types.js';
import { compileCidrs, type CidrList } from './normalize/cidr.js';
import { RequestNormalizer } from './normalize/normalizer.js';
import { WantedHeaders } from './wire/wanted-headers.js';
import { createLoggers, type Logger } from './observability/logger.js';
import { createMetrics, markConfigServing, type Metrics } from './observability/metrics.js';
import { createCheckTracer, type CheckTracer } from './observability/tracing.js';
import { compilePolicy } from './policy/index.js';
import type { CompiledPolicy } from './policy/types.js';
import { EnvoyResponder } from './response/envoy.js';
import { HttpResponder } from './response/http.js';
import { createStateStore } from './state/index.js';
import type { StateStore } from './state/types.js';
import { createGrpcServer, type ZtGrpcServer } from './transport/grpc-server.js';
import { HealthService } from './transport/health.js';
import { ADMIN_TOKEN_ENV, adminRefusal } from './transport/admin-endpoint.js';
import { createOpsServer, listenHttp, type ReadinessReport } from './transport/http-server.js';
import { LiveStats } from './observability/live-stats.js';
import { CHECK_ORDER } from './policy/index.js';
import type { StateView } from './state/types.js';
import { explainRequest, type ExplainInput, type ExplainOutcome } from './ui/explain.js';
import { createUiHandler, isLoopbackListener } from './ui/handler.js';
import { combineParts, LIST_LIMIT, type UiPart, type UiSnapshot } from './ui/snapshot.js';

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
  /** Required for the live page on a listener that is not loopback (ZT_AUTHZ_UI_TOKEN). */
  readonly uiAccessToken?: string | undefined;
  /**
   * Gathers a value from every process of a `serve --workers N` group (runtime/workers.ts);
   * without it the page shows this process alone.
   */
  readonly shareAcrossWorkers?: ((channel: string, local: () => unknown) => () => Promise<unknown[]>) | undefined;
  /** The command-line overrides start-up used (flags, --dev, environment); every reload applies them again. */
  readonly loadOptions?: Omit<LoadOptions, 'file'>;
  /** Set by App.start from the tracing section. */
  readonly tracer?: CheckTracer | undefined;
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
  /** Kept across reloads so the page's history survives them; undefined while the page is off. */
  private readonly live: LiveStats | undefined;
  /** The config the process started with: server and state sections change only on restart. */
  private readonly started: Config;
  /** Hash of the whole config (listen addresses included): a reload to the same file changes nothing. */
  private configHash: string;
  /** The last reload was refused: the next good file is worth saying so. */
  private lastRefused = false;

  private constructor(
    loaded: Extract<LoadResult, { ok: true }>,
    readonly logger: Logger,
    readonly metrics: Metrics,
    readonly state: StateStore,
    private readonly opts: AppOptions,
  ) {
    // server.* takes effect on restart only, trusted_proxies included.
    this.trustedProxies = compileCidrs(loaded.config.server.http.trusted_proxies);
    const http = loaded.config.server.http;
    if (http.ui) {
      if (http.address !== '' && !isLoopbackListener(http.address) && !opts.uiAccessToken) {
        throw new Error(
          `server.http.ui: the live page on ${http.address}, which is not a loopback address, needs an access token: set ZT_AUTHZ_UI_TOKEN`,
        );
      }
      this.live = new LiveStats({ showUsers: !http.ui_redact.includes('user_id'), showIps: !http.ui_redact.includes('client_ip') });
    }
    this.active = this.assemble(this.compile(loaded.config, loaded.hash), createAuthenticator(loaded.config.identity, { logger, metrics }));
    this.started = loaded.config;
    this.configHash = loaded.configHash;
    this.announce(this.active);
    this.health = new HealthService(() => this.ready() && !this.draining);
  }

  static async start(loaded: Extract<LoadResult, { ok: true }>, opts: AppOptions = {}): Promise<App> {
    const config = loaded.config;
    let logger = opts.logger;
    if (!logger) {
      const loggers = createLoggers(config.log);
      logger = loggers.logger;
      opts = { ...opts, decisionLogger: opts.decisionLogger ?? loggers.decisions };
    }
    const metrics = createMetrics();
    opts = { ...opts, tracer: await createCheckTracer(config.tracing) };
    const state = createStateStore(config.state, { logger, metrics });
    const app = new App(loaded, logger, metrics, state, opts);
    await app.listen();
    if (config.identity.development_keys) {
      logger.warn(
        `DEVELOPMENT MODE: running on ${loaded.embedded ? 'the embedded demo config' : `${loaded.source} with --dev`} with the bundled DEVELOPMENT key set. ` +
          'Anyone can mint tokens for these keys. Never use this outside a laptop; pass --config with real issuers.',
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
    const engine = new DecisionEngine({
      authenticator,
      state: this.state,
      policy: c.policy,
      nextId: this.nextId,
      remediation: new RemediationScope(compileCidrs(c.config.state.remediation.exempt)),
    });
    const pipeline = new DecisionPipeline({
      engine,
      normalizer: new RequestNormalizer({ trustedXffHops: c.config.network.trusted_xff_hops, trustedProxies: this.trustedProxies }),
      metrics: this.metrics,
      logger: this.logger,
      decisionLogger: this.opts.decisionLogger ?? this.logger,
      decisionLog: c.config.log.decisions,
      sampleAllow: c.config.log.decisions_sample_allow,
      traceIds: c.config.log.trace_ids,
      policyHash: c.hash,
      tracer: this.opts.tracer,
      defaultTimeoutMs: c.config.server.decision_timeout_ms,
      live: this.live,
    });
    return { ...c, authenticator, pipeline };
  }

  /** Metrics and warnings of the config that now serves. */
  private announce(a: Active): void {
    // Only once a config serves: metrics set earlier would name a hash a refused reload never applied.
    markConfigServing(this.metrics, a.hash);
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
    // Before anything binds: a too-short admin token is a startup error.
    const adminToken = process.env[ADMIN_TOKEN_ENV] || undefined;
    const adminOff = cfg.http.address === '' ? 'no HTTP listener' : adminRefusal(cfg.http.address, adminToken);
    this.grpcServer = createGrpcServer(cfg, {
      serving: () => this.active,
      health: this.health,
      logger: this.logger,
    });
    this.grpcAddress = await this.grpcServer.bind(cfg.grpc.address);
    if (cfg.http.address !== '') {
      if (adminOff !== undefined) this.logger.info(`admin endpoint off: ${adminOff}`);
      this.httpServer = createOpsServer({
        admin: adminOff === undefined ? { unblock: (t) => this.state.unblockIp(t), logger: this.logger, token: adminToken } : undefined,
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
        ui: this.live === undefined ? undefined : this.uiHandler(),
      });
      this.httpAddress = await listenHttp(this.httpServer, cfg.http.address);
    }
    this.logger.info({ grpc: this.grpcAddress, http: this.httpAddress, policy_hash: this.active.hash }, 'zt-authz listening');
  }

  private uiHandler() {
    const share = this.opts.shareAcrossWorkers ?? ((_channel, local) => async () => [await local()]);
    const gather = share('ui', () => this.uiPart());
    return createUiHandler({
      snapshot: async (): Promise<UiSnapshot> => combineParts((await gather()) as UiPart[], Date.now()),
      explain: (input) => this.explain(input),
      accessToken: this.opts.uiAccessToken,
      logger: this.logger,
    });
  }

  /** This process's share of the live page. */
  async uiPart(): Promise<UiPart> {
    const active = this.active;
    const now = Date.now();
    const shadowed = new Set<string>(active.policy.shadowedChecks);
    const { ready, components } = this.readiness();
    return {
      pid: process.pid,
      policy: { hash: active.hash, checks: CHECK_ORDER.map((c) => ({ name: c.check, shadowed: shadowed.has(c.check) })) },
      health: { ...components, ready },
      live: this.live!.raw(now),
      state: this.state.inspect(now, LIST_LIMIT),
      alerts: await this.state.recentAlerts(LIST_LIMIT),
    };
  }

  /** The explain form: the serving policy and keys, a state view that counts no strikes. */
  explain(input: ExplainInput): Promise<ExplainOutcome> {
    const active = this.active;
    const s = this.state;
    const readOnly: StateView = {
      userSuspended: (sub, now) => s.userSuspended(sub, now),
      ipBlocked: (ip, now) => s.ipBlocked(ip, now),
      liveRisk: (sub, now) => s.liveRisk(sub, now),
      recordAuthFailure: () => undefined,
    };
    const authn = active.authenticator;
    // The pasted token is verified but never stored: not in the token cache, not in a log.
    const forgetful: Authenticator = {
      extractToken: (req) => authn.extractToken(req),
      authenticate: (token, now) => authn.authenticate(token, now, false),
      ready: () => authn.ready(),
      anyReady: () => authn.anyReady(),
      keyStatus: () => authn.keyStatus(),
      start: () => authn.start(),
      close: () => undefined,
    };
    const engine = new DecisionEngine({
      authenticator: forgetful,
      state: readOnly,
      policy: active.policy,
      nextId: this.nextId,
      remediation: new RemediationScope(compileCidrs([])),
    });
    const issuer = active.config.identity.issuers[0];
    return explainRequest(input, {
      engine,
      hash: active.hash,
      tokenHeader: issuer?.token_header ?? 'authorization',
      tokenScheme: issuer?.token_scheme ?? 'Bearer',
    });
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
        jwks: this.authenticator.keyStatus(),
        state: { backend: state.backend, connected: state.connected, ready: state.ready, mirror_age_ms: Math.round(state.mirrorAgeMs) },
        policy_hash: this.active.hash,
      },
    };
  }

  /** Re-read the config file; an invalid file is refused and the running policy keeps serving. */
  async reload(): Promise<ReloadOutcome> {
    const loaded = loadConfig({ ...this.opts.loadOptions, file: this.opts.configFile });
    return this.apply(loaded);
  }

  async apply(loaded: LoadResult): Promise<ReloadOutcome> {
    if (!loaded.ok) return this.refuse({ source: loaded.source, errors: loaded.errors }, 'config reload rejected; the previous policy keeps serving', loaded.errors);
    if (loaded.configHash === this.configHash) {
      if (this.lastRefused) {
        this.lastRefused = false;
        this.metrics.lastReloadSuccess.set(1);
        this.logger.info({ hash: loaded.hash }, 'config file is valid again and matches the running config; nothing to change');
      }
      return { ok: true, hash: loaded.hash };
    }
    let compiled: Compiled;
    try {
      compiled = this.compile(loaded.config, loaded.hash);
    } catch (err) {
      return this.refuse({ err }, 'config reload failed to compile; the previous policy keeps serving', [(err as Error).message]);
    }
    const old = this.active.config;
    let authenticator = this.authenticator;
    if (JSON.stringify(old.identity) !== JSON.stringify(loaded.config.identity)) {
      // New key sources must be loaded before they take over, or every check would deny meanwhile.
      const fresh = createAuthenticator(loaded.config.identity, { logger: this.logger, metrics: this.metrics });
      await fresh.start();
      if (!fresh.ready()) {
        fresh.close();
        return this.refuse({}, 'config reload rejected: the new identity section has no usable keys', ['identity: keys of the new config could not be loaded']);
      }
      authenticator = fresh;
    }
    let restartRequired = false;
    for (const section of ['server', 'state', 'tracing'] as const) {
      if (JSON.stringify(this.started[section]) !== JSON.stringify(loaded.config[section])) {
        restartRequired = true;
        if (JSON.stringify(old[section]) !== JSON.stringify(loaded.config[section])) {
          this.logger.warn({ section }, 'config section changed; it takes effect on restart');
        }
      }
    }
    const changed = (['server', 'log', 'network', 'identity', 'state', 'policy', 'tracing'] as const).filter(
      (section) => JSON.stringify(old[section]) !== JSON.stringify(loaded.config[section]),
    );
    const previous = this.active;
    const next = this.assemble(compiled, authenticator);
    this.configHash = loaded.configHash;
    this.active = next;
    // Requests that took the old snapshot finish under it; its authenticator then answers from
    // what it has (close stops only its refresh timers and cache).
    if (previous.authenticator !== authenticator) previous.authenticator.close();
    this.announce(next);
    this.metrics.restartRequired.set(restartRequired ? 1 : 0);
    this.metrics.configReloads.inc({ outcome: 'applied' });
    this.logger.info(
      { hash: next.hash, changed, after_refused: this.lastRefused || undefined },
      this.lastRefused ? 'config reloaded: a good file replaces the refused one' : 'config reloaded',
    );
    this.lastRefused = false;
    return { ok: true, hash: next.hash };
  }

  private refuse(fields: Record<string, unknown>, msg: string, errors: readonly string[]): ReloadOutcome {
    this.lastRefused = true;
    this.metrics.configReloads.inc({ outcome: 'rejected' });
    this.metrics.lastReloadSuccess.set(0);
    this.logger.error(fields, msg);
    return { ok: false, hash: this.active.hash, errors };
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
    await this.opts.tracer?.shutdown().catch((err: unknown) => this.logger.warn({ err }, 'sending the last spans failed'));
    await this.state.close().catch((err: unknown) => this.logger.warn({ err }, 'state close failed'));
    this.logger.info('stopped');
  }
}
