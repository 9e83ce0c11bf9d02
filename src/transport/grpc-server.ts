import * as grpc from '@grpc/grpc-js';
import type { Config } from '../config/schema.js';
import type { Checker } from '../decision/checker.js';
import type { Decision } from '../decision/types.js';
import type { Logger } from '../observability/logger.js';
import type { WireCheckRequest } from '../normalize/check-request.js';
import type { EnvoyResponder, WireCheckResponse } from '../response/envoy.js';
import { HealthService } from './health.js';
import { AUTHORIZATION_SERVICE, loadProtos } from './protos.js';

export interface GrpcServerDeps {
  readonly checker: () => Checker;
  readonly responder: () => EnvoyResponder;
  readonly health: HealthService;
  readonly logger: Logger;
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
    'grpc.http2.min_ping_interval_without_data_ms': limits.keepalive_min_ping_interval_ms,
    'grpc.http2.max_ping_strikes': limits.keepalive_max_ping_strikes,
  } as grpc.ServerOptions;
}

function deadlineMs(call: grpc.ServerUnaryCall<unknown, unknown>): number {
  const d = call.getDeadline();
  return d instanceof Date ? d.getTime() : d;
}

/** Creates the gRPC server with the Authorization and Health services; does not bind. */
export function createGrpcServer(cfg: Config['server'], deps: GrpcServerDeps): grpc.Server {
  const protos = loadProtos();
  const server = new grpc.Server(serverOptions(cfg.limits));

  const check: grpc.handleUnaryCall<WireCheckRequest, WireCheckResponse> = (call, callback) => {
    const respond = (d: Decision) => {
      let response: WireCheckResponse;
      try {
        response = deps.responder().toCheckResponse(d);
      } catch (err) {
        deps.logger.error({ err }, 'building the response failed');
        callback({ code: grpc.status.PERMISSION_DENIED, details: 'internal_error' });
        return;
      }
      callback(null, response);
    };
    let result: Decision | Promise<Decision>;
    try {
      result = deps.checker().checkWire(call.request ?? {}, deadlineMs(call));
    } catch (err) {
      // The checker converts faults itself; this is the last barrier before a crash.
      deps.logger.error({ err }, 'check threw; denying');
      callback({ code: grpc.status.PERMISSION_DENIED, details: 'internal_error' });
      return;
    }
    if (result instanceof Promise) {
      result.then(respond, (err: unknown) => {
        deps.logger.error({ err }, 'check rejected; denying');
        callback({ code: grpc.status.PERMISSION_DENIED, details: 'internal_error' });
      });
    } else {
      respond(result);
    }
  };

  server.addService(protos.authorization, { Check: check });
  server.addService(protos.health, deps.health.handlers());
  return server;
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
