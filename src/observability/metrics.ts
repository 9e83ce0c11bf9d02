import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { REASON_CODES } from '../reasons.js';
import { VERSION } from './build-info.js';
import { FastHistogram } from './fast-histogram.js';

/**
 * All Prometheus metrics, created once per process (or per test app) on one registry.
 * Label values are bounded: reason codes come from src/reasons.ts, issuers from config.
 */
/** An issuer's key set as the JWKS gauges read it at scrape time. */
export interface JwksStatusSource {
  readonly issuer: string;
  status(): { readonly age_s: number | null; readonly last_refresh: 'ok' | 'error' | 'none'; readonly expired: boolean };
}

type JwksStatus = ReturnType<JwksStatusSource['status']>;

/** A per-issuer gauge computed from each key source's status at scrape; `value` undefined: no sample. */
function jwksStatusGauge(registry: Registry, sources: ReadonlySet<JwksStatusSource>, name: string, help: string, value: (s: JwksStatus) => number | undefined) {
  return new Gauge({
    name,
    help,
    labelNames: ['issuer'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const src of sources) {
        const v = value(src.status());
        if (v !== undefined) this.set({ issuer: src.issuer }, v);
      }
    },
  });
}

export function createMetrics() {
  const registry = new Registry();
  /** Registered by each issuer with a fetched key set; read at scrape, so nothing runs per request. */
  const jwksStatusSources = new Set<JwksStatusSource>();
  // The event-loop-lag monitor samples on a timer; prom-client's 10 ms default wakes an idle
  // sidecar 100 times a second (measured: 13 ms of CPU per second doing nothing, in every pod).
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  /**
   * Decisions are counted on the hot path as plain numbers (index: REASON_INDEX) and added to the
   * prom-client counter when /metrics is scraped: a labelled inc() hashes its label set on every
   * call, which showed in profiles.
   */
  const decisionCounts = new Float64Array(REASON_CODES.length);
  const tokenCacheCounts = { hit: 0, miss: 0 };
  const m = {
    registry,
    decisionCounts,
    decisions: new Counter({
      name: 'zt_authz_decisions_total',
      help: 'Decisions by result and reason code',
      labelNames: ['result', 'reason'] as const,
      registers: [registry],
      collect() {
        for (let i = 0; i < decisionCounts.length; i++) {
          const n = decisionCounts[i]!;
          if (n === 0) continue;
          decisionCounts[i] = 0;
          const reason = REASON_CODES[i]!;
          this.inc({ result: reason === 'allowed' ? 'allow' : 'deny', reason }, n);
        }
      },
    }),
    wouldDeny: new Counter({
      name: 'zt_authz_would_deny_total',
      help: 'Shadowed checks that would have denied, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    shadowMode: new Gauge({
      name: 'zt_authz_shadow_mode',
      help: '1 while any check runs in shadow mode',
      registers: [registry],
    }),
    checkSeconds: new FastHistogram(
      'zt_authz_check_duration_seconds',
      'Server-side time to decide one Check',
      [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.2],
      registry,
    ),
    jwksRefreshes: new Counter({
      name: 'zt_authz_jwks_refresh_total',
      help: 'JWKS fetches by issuer and outcome',
      labelNames: ['issuer', 'outcome'] as const,
      registers: [registry],
    }),
    jwksKeys: new Gauge({
      name: 'zt_authz_jwks_keys',
      help: 'Usable keys per issuer',
      labelNames: ['issuer'] as const,
      registers: [registry],
    }),
    jwksStatusSources,
    jwksAge: jwksStatusGauge(
      registry,
      jwksStatusSources,
      'zt_authz_jwks_age_seconds',
      'Seconds since the key set in force was fetched, per issuer (+Inf: none yet, or expired past max_stale_s)',
      (s) => (s.age_s === null || s.expired ? Number.POSITIVE_INFINITY : s.age_s),
    ),
    jwksLastRefreshSuccess: jwksStatusGauge(
      registry,
      jwksStatusSources,
      'zt_authz_jwks_last_refresh_success',
      '1 when the last JWKS fetch of the issuer succeeded, 0 when it failed (no sample before the first)',
      (s) => (s.last_refresh === 'none' ? undefined : s.last_refresh === 'ok' ? 1 : 0),
    ),
    /** Token-cache lookups on the hot path, as plain numbers folded in at scrape (see decisionCounts). */
    tokenCacheCounts,
    tokenCache: new Counter({
      name: 'zt_authz_token_cache_total',
      help: 'Verified-token cache lookups',
      labelNames: ['result'] as const,
      registers: [registry],
      collect() {
        if (tokenCacheCounts.hit > 0) this.inc({ result: 'hit' }, tokenCacheCounts.hit);
        if (tokenCacheCounts.miss > 0) this.inc({ result: 'miss' }, tokenCacheCounts.miss);
        tokenCacheCounts.hit = 0;
        tokenCacheCounts.miss = 0;
      },
    }),
    stateMirrorAge: new Gauge({
      name: 'zt_authz_state_mirror_age_seconds',
      help: 'Age of the Redis mirror (time since last known in sync)',
      registers: [registry],
    }),
    stateConnected: new Gauge({
      name: 'zt_authz_state_connected',
      help: '1 while the state backend is connected',
      registers: [registry],
    }),
    stateRedisPersistence: new Gauge({
      name: 'zt_authz_state_redis_persistence',
      help: "Redis persistence as read at connect (1 on the current mode): aof, rdb (snapshots only), none, unknown (INFO/CONFIG refused); worst master of a cluster",
      labelNames: ['mode'] as const,
      aggregator: 'max',
      registers: [registry],
    }),
    stateEvents: new Counter({
      name: 'zt_authz_state_events_total',
      help: 'State mirror events (invalidation, resync, error, remediation_block)',
      labelNames: ['event'] as const,
      registers: [registry],
    }),
    /** Why a sidecar's resync built the shared snapshot itself (snapshot.ts BuildReason). */
    stateSnapshotBuilds: new Counter({
      name: 'zt_authz_state_snapshot_builds_total',
      help: 'Shared snapshots this sidecar built, by why no published one would do',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    /** Why the keeper of a snapshot this sidecar built stopped (snapshot-keeper.ts KeeperStop). */
    stateKeeperStops: new Counter({
      name: 'zt_authz_state_keeper_stops_total',
      help: 'Snapshot keepers this sidecar stopped, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    configInfo: new Gauge({
      name: 'zt_authz_config_info',
      help: 'Active policy hash (value is 1)',
      labelNames: ['hash'] as const,
      registers: [registry],
    }),
    /** The version, the runtime and the policy hash that is serving (set when a config takes over). */
    buildInfo: new Gauge({
      name: 'zt_authz_build_info',
      help: 'zt-authz version, Node.js version and the policy hash in use (value is 1)',
      labelNames: ['version', 'node', 'policy_hash'] as const,
      registers: [registry],
    }),
    lastReloadSuccess: new Gauge({
      name: 'zt_authz_config_last_reload_success',
      help: '1 if the last config load or reload was applied in full, 0 if it was refused',
      registers: [registry],
    }),
    lastReloadSuccessTime: new Gauge({
      name: 'zt_authz_config_last_reload_success_timestamp_seconds',
      help: 'Unix time of the last config load or reload that was applied',
      registers: [registry],
    }),
    restartRequired: new Gauge({
      name: 'zt_authz_config_restart_required',
      help: '1 while the config file changes server or state settings that apply only on restart',
      registers: [registry],
    }),
    configReloads: new Counter({
      name: 'zt_authz_config_reloads_total',
      help: 'Config reloads by outcome',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
  };
  m.lastReloadSuccess.set(1);
  return m;
}

/** Points the config metrics at the policy that now serves: only ever called once it does. */
export function markConfigServing(m: Metrics, hash: string, nowMs = Date.now()): void {
  m.configInfo.reset();
  m.configInfo.set({ hash }, 1);
  m.buildInfo.reset();
  m.buildInfo.set({ version: VERSION, node: process.version, policy_hash: hash }, 1);
  m.lastReloadSuccess.set(1);
  m.lastReloadSuccessTime.set(Math.floor(nowMs / 1000));
}

export type Metrics = ReturnType<typeof createMetrics>;
