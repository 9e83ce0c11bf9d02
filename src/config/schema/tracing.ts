import { z } from 'zod';
import { obj, positiveInt } from './common.js';

/** OpenTelemetry spans for each Check, exported over OTLP/HTTP (JSON). Off unless an endpoint is set. */
export const tracingSchema = obj({
  /** The collector's OTLP/HTTP traces URL, e.g. http://otel-collector:4318/v1/traces. Empty: no spans. */
  otlp_endpoint: z.union([z.url({ protocol: /^https?$/ }), z.literal('')]).default(''),
  /** Extra request headers for the collector (an API key, say). */
  otlp_headers: z.record(z.string(), z.string()).default({}),
  service_name: z.string().min(1).default('zt-authz'),
  /** Share of Checks without a sampled parent that get a span; a parent's sampled flag wins. */
  sample_ratio: z.number().min(0).max(1).default(1),
  /** How often the batch of finished spans is sent. */
  export_interval_ms: positiveInt.default(5000),
  /** The longest one export may take before it is abandoned. */
  export_timeout_ms: positiveInt.default(10_000),
}).prefault({});
