import { constants as h2, type ServerHttp2Session } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import type { Config } from '../config/schema/index.js';
import type { DecisionPipeline } from '../decision/pipeline.js';
import type { Decision } from '../model.js';
import type { Logger } from '../observability/logger.js';
import type { WantedHeaders } from '../wire/wanted-headers.js';
import type { EnvoyResponder, WireCheckResponse } from '../response/envoy.js';
import { REASONS } from '../reasons.js';
import { denyBody, REASON_HEADER } from '../response/deny-body.js';
import { onEverySession } from './grpc-internals.js';
import { HealthService } from './health.js';
import { AUTHORIZATION_SERVICE, loadProtos, type DecodedCheck } from '../wire/protos.js';

/** What one request is served by: all from one config (see App's Active). */
export interface GrpcServing {
  readonly pipeline: DecisionPipeline;
  readonly envoy: EnvoyResponder;
  /** The request headers this config's checks read; the decoder keeps only these. */
  readonly wantedHeaders: WantedHeaders;
}

export interface GrpcServerDeps {
  /** Taken once per call, when its bytes are decoded. */
  readonly serving: () => GrpcServing;
  readonly health: HealthService;
  readonly logger: Logger;
}

export interface ZtGrpcServer {
  readonly server: grpc.Server;
  /** Binds, then hooks ping enforcement into the listener's sessions; resolves to host:port. */
  bind(address: string): Promise<string>;
}

export function serverOptions(limits: Config['server']['limits']): grpc.ServerOptions {
  return {
    'grpc.max_concurrent_streams': limits.max_concurrent_streams,
    'grpc.max_receive_message_length': limits.max_receive_message_bytes,
    'grpc.max_send_message_length': 1024 * 1024,
    'grpc.keepalive_time_ms': limits.keepalive_time_ms,
    'grpc.keepalive_timeout_ms': limits.keepalive_timeout_ms,
    'grpc.max_connection_idle_ms': limits.max_connection_idle_ms,
    'grpc.max_connection_age_ms': limits.max_connection_age_ms,
    'grpc.max_connection_age_grace_ms': limits.max_connection_age_grace_ms,
    // Ping limits are not among them: grpc-js ignores those options; enforcePingPolicy applies them.
  } as grpc.ServerOptions;
}

/**
 * The last-barrier answer, built without the responder (which may be what failed). It is a
 * CheckResponse, not an RPC error: Envoy treats any RPC error as an authorization *failure*, which
 * `failure_mode_allow: true` would let through, while a denied CheckResponse is always a deny.
 */
const INTERNAL_ERROR_RESPONSE: WireCheckResponse = Object.freeze({
  status: { code: REASONS.internal_error.grpc, message: 'internal_error' },
  denied_response: {
    status: { code: REASONS.internal_error.http },
    headers: [
      { header: { key: 'content-type', value: 'application/json' }, append_action: 2 },
      { header: { key: REASON_HEADER, value: 'internal_error' }, append_action: 2 },
    ],
    body: denyBody('internal_error', ''),
  },
  dynamic_metadata: { fields: {} },
}) as WireCheckResponse;

function deadlineMs(call: grpc.ServerUnaryCall<unknown, unknown>): number {
  const d = call.getDeadline();
  return d instanceof Date ? d.getTime() : d;
}

export interface PingPolicy {
  readonly minIntervalMs: number;
  readonly maxStrikes: number;
  readonly logger: Logger;
}

/** How long a GOAWAY'd abuser keeps its connection before it is cut regardless of open streams. */
const PING_ABUSE_CLOSE_MS = 1000;

/**
 * Ping-abuse enforcement as gRPC core does it (min_recv_ping_interval_without_data, max_ping_strikes),
 * which grpc-js lacks (see grpc-internals.ts), so a client could keep the sidecar busy acking PINGs
 * forever. A PING less than minIntervalMs after the previous one, with no new stream
 * in between, is a strike; past maxStrikes the connection gets GOAWAY ENHANCE_YOUR_CALM
 * "too_many_pings" and is closed.
 */
export function enforcePingPolicy(session: ServerHttp2Session, policy: PingPolicy): void {
  let lastPingMs = Number.NEGATIVE_INFINITY;
  let strikes = 0;
  // Streams since the previous PING, read from the session's last stream id when a PING comes
  // in: a 'stream' listener would cost every call, pings are rare.
  let lastStreamId = 0;
  session.on('ping', () => {
    const now = performance.now();
    const streamId = session.state.lastProcStreamID ?? 0;
    const streamSincePing = streamId !== lastStreamId;
    lastStreamId = streamId;
    if (streamSincePing) strikes = 0;
    const tooSoon = now - lastPingMs < policy.minIntervalMs && !streamSincePing;
    lastPingMs = now;
    if (!tooSoon) return;
    strikes += 1;
    if (strikes <= policy.maxStrikes || session.closed || session.destroyed) return;
    policy.logger.warn({ peer: session.socket?.remoteAddress, strikes }, 'client pings too often; closing the connection (GOAWAY too_many_pings)');
    try {
      session.goaway(h2.NGHTTP2_ENHANCE_YOUR_CALM, undefined, Buffer.from('too_many_pings'));
      session.close();
    } catch {
      session.destroy();
      return;
    }
    setTimeout(() => session.destroy(), PING_ABUSE_CLOSE_MS).unref();
  });
}

/** Creates the gRPC server with the Authorization and Health services; `bind` listens. */
export function createGrpcServer(cfg: Config['server'], deps: GrpcServerDeps): ZtGrpcServer {
  const protos = loadProtos();
  const server = new grpc.Server(serverOptions(cfg.limits));
  const pingPolicy: PingPolicy = {
    minIntervalMs: cfg.limits.keepalive_min_ping_interval_ms,
    maxStrikes: cfg.limits.keepalive_max_ping_strikes,
    logger: deps.logger,
  };

  // Built once per server rather than as a closure per call: it is on the path of every Check.
  const respond = (callback: grpc.sendUnaryData<WireCheckResponse>, envoy: EnvoyResponder, d: Decision) => {
    let response: WireCheckResponse;
    try {
      // Pre-encoded bytes; protos.ts passes Buffers through responseSerialize untouched.
      response = envoy.encode(d) as unknown as WireCheckResponse;
    } catch (err) {
      deps.logger.error({ err }, 'building the response failed; denying');
      callback(null, INTERNAL_ERROR_RESPONSE);
      return;
    }
    callback(null, response);
  };

  const check: grpc.handleUnaryCall<DecodedCheck<GrpcServing>, WireCheckResponse> = (call, callback) => {
    let result: Decision | Promise<Decision>;
    let serving: GrpcServing;
    try {
      // The decoder took the snapshot; a call grpc-js delivered without one (never seen) takes it now.
      serving = call.request?.serving ?? deps.serving();
      result = serving.pipeline.decideWire(call.request?.request ?? {}, deadlineMs(call));
    } catch (err) {
      // The pipeline converts faults itself; this is the last barrier before a crash.
      deps.logger.error({ err }, 'check threw; denying');
      callback(null, INTERNAL_ERROR_RESPONSE);
      return;
    }
    if (result instanceof Promise) {
      result.then((d) => respond(callback, serving.envoy, d), (err: unknown) => {
        deps.logger.error({ err }, 'check rejected; denying');
        callback(null, INTERNAL_ERROR_RESPONSE);
      });
    } else {
      respond(callback, serving.envoy, result);
    }
  };

  server.addService(protos.authorizationServer(deps.serving), { Check: check });
  server.addService(protos.health, deps.health.handlers());
  // Opt-in: reflection tells anyone who can reach the port every service and message shape.
  if (cfg.grpc.reflection) new ReflectionService(protos.definition).addToServer(server);
  return {
    server,
    bind: async (address) => {
      const bound = await bindGrpc(server, address);
      if (!onEverySession(server, (s) => enforcePingPolicy(s, pingPolicy))) {
        // test/core/library-internals.test.ts fails first; this is for a build that skipped it.
        deps.logger.error('cannot hook grpc-js http2 sessions; keepalive ping enforcement is off');
      }
      return bound;
    },
  };
}

export function bindGrpc(server: grpc.Server, address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(new Error(`cannot listen on ${address}: ${err.message}`));
      if (address.startsWith('unix:')) return resolve(address);
      const host = address.slice(0, address.lastIndexOf(':'));
      resolve(`${host}:${port}`);
    });
  });
}

export { AUTHORIZATION_SERVICE };
