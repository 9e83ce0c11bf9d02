import { z } from 'zod';
import { hostPort, obj, positiveInt } from './common.js';

export const serverSchema = obj({
  grpc: obj({
    address: hostPort.default('127.0.0.1:9191'),
    /** gRPC server reflection (grpcurl, grpcui list and describe the services); off by default. */
    reflection: z.boolean().default(false),
  }).prefault({}),
  http: obj({
    /** Ops endpoints (/healthz, /readyz, /metrics) and the HTTP authorization mode. Empty disables. */
    address: z.union([hostPort, z.literal('')]).default('127.0.0.1:8181'),
    /** Path prefix of the HTTP authorization mode (Envoy http_service / nginx auth_request). */
    authz_prefix: z.string().regex(/^\/[^?#]*$/).default('/authz'),
    /** Peers (IPs or CIDRs) whose X-Forwarded-* / X-Original-* headers are believed. */
    trusted_proxies: z.array(z.string()).default(['127.0.0.1/32', '::1/128']),
    /**
     * The live security page at /ui/ (read-only, plus an explain form). Off by default; on a
     * listener that is not loopback it needs an access token (ZT_AUTHZ_UI_TOKEN).
     */
    ui: z.boolean().default(false),
    /** What the page's recent-denies list leaves out. */
    ui_redact: z.array(z.enum(['user_id', 'client_ip'])).default([]),
  }).prefault({}),
  limits: obj({
    max_concurrent_streams: positiveInt.default(1000),
    max_receive_message_bytes: positiveInt.default(4 * 1024 * 1024),
    /** Clients pinging more often than this (without data) get GOAWAY after max_ping_strikes. */
    keepalive_min_ping_interval_ms: positiveInt.default(10_000),
    keepalive_max_ping_strikes: positiveInt.default(2),
    keepalive_time_ms: positiveInt.default(60_000),
    keepalive_timeout_ms: positiveInt.default(20_000),
    max_connection_idle_ms: positiveInt.default(300_000),
    max_connection_age_ms: positiveInt.default(1_800_000),
    max_connection_age_grace_ms: positiveInt.default(30_000),
  }).prefault({}),
  /** Budget for one decision when the caller sends no grpc-timeout. Envoy's default is 200 ms. */
  decision_timeout_ms: positiveInt.default(150),
  shutdown_grace_ms: positiveInt.default(10_000),
});

const logSink = z.union([z.literal('stdout'), z.literal('stderr'), z.string().regex(/^\//, 'expected stdout, stderr or an absolute file path')]);

export const logSchema = obj({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** One JSON line per decision. Allows can be sampled away on very hot paths. */
  decisions: z.enum(['all', 'deny', 'none']).default('all'),
  /** Share of allow lines kept under `decisions: all` (0.01 keeps 1 %); every deny is kept. */
  decisions_sample_allow: z.number().min(0).max(1).default(1),
  /** Operational logs: `stdout`, `stderr` or an absolute file path. */
  sink: logSink.default('stdout'),
  /** Decision lines: `stdout`, `stderr` or an absolute file path; defaults to `sink`. */
  decisions_sink: logSink.optional(),
  /** `epoch` (pino's milliseconds) or `iso` (ISO-8601, e.g. 2026-12-01T21:04:31.123Z). */
  time: z.enum(['epoch', 'iso']).default('epoch'),
  /** `number` (pino's 30, 40, …) or `label` ("info", "warn", …). */
  levels: z.enum(['number', 'label']).default('number'),
  /** Put trace_id and span_id from a request's traceparent or B3 headers on its decision line. */
  trace_ids: z.boolean().default(true),
}).prefault({});

export const networkSchema = obj({
  /**
   * How many x-forwarded-for hops (counted from the right) are trusted. 0 means the client is
   * Envoy's downstream peer (attributes.source.address) and x-forwarded-for is ignored.
   */
  trusted_xff_hops: z.number().int().min(0).max(10).default(0),
}).prefault({});
