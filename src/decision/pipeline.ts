import type { Logger } from '../observability/logger.js';
import type { LiveStats } from '../observability/live-stats.js';
import type { Metrics } from '../observability/metrics.js';
import { traceContextOf } from '../observability/trace-context.js';
import type { CheckTracer } from '../observability/tracing.js';
import type { AuthSubrequest } from '../normalize/auth-subrequest.js';
import type { RequestNormalizer } from '../normalize/normalizer.js';
import { RequestError } from '../normalize/request.js';
import { UNDECODABLE_REQUEST, type WireCheckRequest } from '../wire/check-request.js';
import type { DecisionEngine } from './engine.js';
import { REASON_INDEX } from '../reasons.js';
import type { CheckTrace, Decision, NormalizedRequest } from '../model.js';

export interface PipelineOptions {
  /** This config's engine: a request that waits on a key refetch still finishes under it. */
  readonly engine: DecisionEngine;
  readonly normalizer: RequestNormalizer;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Decision lines only; see createLoggers. */
  readonly decisionLogger: Logger;
  readonly decisionLog: 'all' | 'deny' | 'none';
  /** Share of allow lines kept under decisionLog 'all'; denies are always kept. */
  readonly sampleAllow?: number;
  /** Carried on every decision line. */
  readonly policyHash?: string;
  /** Read traceparent / B3 for the decision line. */
  readonly traceIds?: boolean;
  /** Set only when tracing is configured. */
  readonly tracer?: CheckTracer | undefined;
  /** Budget when the caller sends no deadline. */
  readonly defaultTimeoutMs: number;
  /** The live page's figures; undefined (one comparison per call) when the page is off. */
  readonly live?: LiveStats | undefined;
}

/**
 * Answer before the caller's deadline so the deny arrives while Envoy still listens: 10 % of the
 * remaining time, at least 5 ms, covers a busy event loop firing the timer late.
 */
const deadlineMargin = (remainingMs: number) => Math.max(5, remainingMs * 0.1);

/**
 * Wraps the engine with everything every transport needs: normalisation, the deadline, the
 * exception barrier, metrics and the decision log. Nothing that leaves here is anything but a
 * Decision: faults become explicit denies. One per config: a transport takes the current one once
 * per request, and everything the request sees comes from that config.
 */
/** Decisions that are faults of the sidecar or its dependencies (a span error), not verdicts on the request. */
const FAULTS: ReadonlySet<string> = new Set(['internal_error', 'dependency_unavailable', 'deadline_exceeded']);

export class DecisionPipeline {
  private readonly decisionLogger: Logger;
  private readonly sampleAllow: number;
  private readonly traceIds: boolean;
  constructor(private readonly o: PipelineOptions) {
    // A child's bindings are serialised once, not per line.
    this.decisionLogger = o.policyHash === undefined ? o.decisionLogger : o.decisionLogger.child({ policy_hash: o.policyHash });
    this.sampleAllow = o.sampleAllow ?? 1;
    this.traceIds = o.traceIds ?? false;
  }

  decideWire(msg: WireCheckRequest, deadlineMs: number): Decision | Promise<Decision> {
    const started = performance.now();
    if (msg === UNDECODABLE_REQUEST) return this.invalid('CheckRequest bytes do not decode as protobuf');
    let req: NormalizedRequest;
    try {
      req = this.o.normalizer.checkRequest(msg);
    } catch (err) {
      return this.unusable(err, started);
    }
    return this.decide(req, deadlineMs, started);
  }

  /** The HTTP mode's request, normalised exactly as a CheckRequest is. */
  decideSubrequest(sub: AuthSubrequest, deadlineMs: number): Decision | Promise<Decision> {
    const started = performance.now();
    let req: NormalizedRequest;
    try {
      req = this.o.normalizer.authSubrequest(sub);
    } catch (err) {
      return this.unusable(err, started);
    }
    return this.decide(req, deadlineMs, started);
  }

  private unusable(err: unknown, started: number): Decision {
    const reason = err instanceof RequestError ? 'request_invalid' : 'internal_error';
    return this.finish(this.o.engine.deny(reason, (err as Error).message, undefined), undefined, started, undefined);
  }

  /** A request that could not even be described (bad path, bad headers): an explicit deny. */
  invalid(detail: string): Decision {
    return this.finish(this.o.engine.deny('request_invalid', detail, undefined), undefined, performance.now(), undefined);
  }

  /** A transport-level fault around the pipeline itself: an explicit internal_error deny. */
  failed(detail: string): Decision {
    return this.finish(this.o.engine.deny('internal_error', detail, undefined), undefined, performance.now(), undefined);
  }

  decide(req: NormalizedRequest, deadlineMs: number, started = performance.now()): Decision | Promise<Decision> {
    const engine = this.o.engine;
    const trace: CheckTrace[] | undefined = this.o.logger.isLevelEnabled('debug') ? [] : undefined;
    let result: Decision | Promise<Decision>;
    try {
      result = engine.decide(req, Date.now(), trace);
    } catch (err) {
      this.o.logger.error({ err, request_id: req.requestId }, 'decision failed; denying');
      result = engine.deny('internal_error', 'exception in decision pipeline', undefined);
    }
    if (!(result instanceof Promise)) return this.finish(result, req, started, trace);
    return this.withDeadline(result, deadlineMs, engine).then(
      (d) => this.finish(d, req, started, trace),
      (err: unknown) => {
        this.o.logger.error({ err, request_id: req.requestId }, 'decision failed; denying');
        return this.finish(engine.deny('internal_error', 'exception in decision pipeline', undefined), req, started, trace);
      },
    );
  }

  private withDeadline(p: Promise<Decision>, deadlineMs: number, engine: DecisionEngine): Promise<Decision> {
    const budget = Math.min(
      this.o.defaultTimeoutMs,
      Number.isFinite(deadlineMs) ? deadlineMs - Date.now() - deadlineMargin(deadlineMs - Date.now()) : Number.POSITIVE_INFINITY,
    );
    if (budget <= 0) return Promise.resolve(engine.deny('deadline_exceeded', 'no time left before the caller deadline', undefined));
    return new Promise<Decision>((resolve, reject) => {
      const timer = setTimeout(() => resolve(engine.deny('deadline_exceeded', `no decision within ${Math.round(budget)} ms`, undefined)), budget);
      p.then(
        (d) => {
          clearTimeout(timer);
          resolve(d);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  private finish(d: Decision, req: NormalizedRequest | undefined, started: number, trace: CheckTrace[] | undefined): Decision {
    const ended = performance.now();
    const seconds = (ended - started) / 1000;
    const m = this.o.metrics;
    m.checkSeconds.observe(seconds);
    m.decisionCounts[REASON_INDEX[d.reason]]!++;
    if (d.shadowed) for (const r of d.shadowed) m.wouldDeny.inc({ reason: r });
    this.o.live?.record(d, req, seconds, Date.now());
    const mode = this.o.decisionLog;
    const log = d.allow ? mode === 'all' && (this.sampleAllow >= 1 || Math.random() < this.sampleAllow) : mode !== 'none';
    const tracer = this.o.tracer;
    if (!log && tracer === undefined) return d;
    const context = req !== undefined && (tracer !== undefined || this.traceIds) ? traceContextOf(req.headers) : undefined;
    if (log) {
      this.decisionLogger.info(
        {
          decision_id: d.decisionId,
          allow: d.allow,
          reason: d.reason,
          sub: d.sub,
          iss: d.iss,
          aud: d.aud,
          resource: d.resource,
          risk_score: d.riskScore,
          shadowed: d.shadowed,
          detail: d.detail,
          ip: req?.clientIp,
          method: req?.method,
          host: req?.host,
          path: req?.path,
          // Envoy's per-route context_extensions: how a route names itself to ext_authz.
          route: req !== undefined && hasKeys(req.contextExtensions) ? req.contextExtensions : undefined,
          request_id: req?.requestId,
          principal: req?.principal || undefined,
          trace_id: this.traceIds ? context?.traceId : undefined,
          span_id: this.traceIds ? context?.spanId : undefined,
          us: Math.round(seconds * 1e6),
          trace,
        },
        'decision',
      );
    }
    if (tracer !== undefined) {
      tracer.record(
        started,
        ended,
        context,
        {
          'zt_authz.decision_id': d.decisionId,
          'zt_authz.allow': d.allow,
          'zt_authz.reason': d.reason,
          'zt_authz.resource': d.resource,
          'zt_authz.policy_hash': this.o.policyHash,
          'http.request.method': req?.method,
          'server.address': req?.host,
          'url.path': req?.path,
        },
        FAULTS.has(d.reason),
      );
    }
    return d;
  }
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}
