import type { Config } from '../config/schema/index.js';
import { VERSION } from './build-info.js';
import type { TraceContext } from './trace-context.js';

export type SpanAttributes = Record<string, string | number | boolean | undefined>;

/** One span per Check, recorded when the decision is final (so the hot path carries no span object). */
export interface CheckTracer {
  /** `startedMs`/`endedMs` are performance.now() readings; `failed` marks faults, not denies. */
  record(startedMs: number, endedMs: number, parent: TraceContext | undefined, attributes: SpanAttributes, failed: boolean): void;
  /** Sends what is batched, then stops. */
  shutdown(): Promise<void>;
}

/**
 * Undefined unless `tracing.otlp_endpoint` is set: the OpenTelemetry SDK is imported only then, so
 * a sidecar without tracing neither loads it nor pays for it on a Check (one undefined check).
 */
export async function createCheckTracer(cfg: Config['tracing']): Promise<CheckTracer | undefined> {
  if (cfg.otlp_endpoint === '') return undefined;
  const [api, sdk, otlp, resources] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const exporter = new otlp.OTLPTraceExporter({ url: cfg.otlp_endpoint, headers: cfg.otlp_headers, timeoutMillis: cfg.export_timeout_ms });
  const provider = new sdk.BasicTracerProvider({
    resource: resources.resourceFromAttributes({ 'service.name': cfg.service_name, 'service.version': VERSION }),
    // A sampled (or unsampled) parent from Envoy decides; only root Checks use the ratio.
    sampler: new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(cfg.sample_ratio) }),
    spanProcessors: [
      new sdk.BatchSpanProcessor(exporter, { scheduledDelayMillis: cfg.export_interval_ms, exportTimeoutMillis: cfg.export_timeout_ms }),
    ],
  });
  const tracer = provider.getTracer('zt-authz', VERSION);
  const origin = performance.timeOrigin;
  return {
    record(startedMs, endedMs, parent, attributes, failed) {
      const ctx = parent
        ? api.trace.setSpanContext(api.ROOT_CONTEXT, {
            traceId: parent.traceId,
            spanId: parent.spanId,
            traceFlags: parent.sampled ? api.TraceFlags.SAMPLED : api.TraceFlags.NONE,
            isRemote: true,
          })
        : api.ROOT_CONTEXT;
      const span = tracer.startSpan('envoy.service.auth.v3.Authorization/Check', { kind: api.SpanKind.SERVER, startTime: origin + startedMs, attributes }, ctx);
      if (failed) span.setStatus({ code: api.SpanStatusCode.ERROR, message: String(attributes['zt_authz.reason']) });
      span.end(origin + endedMs);
    },
    shutdown: () => provider.shutdown(),
  };
}
