import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { UNDECODABLE_REQUEST, type WireCheckRequest } from './check-request.js';
import { decodeCheckRequest } from './decode.js';
import { PROTO_DIR } from './proto-dir.js';
import type { WantedHeaders } from './wanted-headers.js';

export { packageRoot, PROTO_DIR } from './proto-dir.js';

/**
 * keepCase keeps Envoy's snake_case names; defaults off so absent fields stay absent and the
 * decoder allocates nothing for them; longs as strings (only int64 `size` and timestamps).
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: false,
  oneofs: false,
  includeDirs: [PROTO_DIR],
};

/** A decoded Check request and the serving snapshot it was decoded for (see authorizationServer). */
export interface DecodedCheck<S> {
  readonly serving: S;
  readonly request: WireCheckRequest;
}

export interface LoadedProtos {
  /** Envoy's Authorization service as proto-loader defines it (protobufjs codecs, all fields). */
  readonly authorization: grpc.ServiceDefinition;
  /**
   * Check decodes with src/wire/decode.ts (only what the checks read, and of the headers only
   * those the snapshot wants). `current` is taken once per call, when its bytes arrive; the call
   * is then served by that snapshot (DecodedCheck.serving).
   */
  authorizationServer<S extends { readonly wantedHeaders: WantedHeaders }>(current: () => S): grpc.ServiceDefinition;
  readonly health: grpc.ServiceDefinition;
  /** The loaded definitions, for gRPC server reflection. */
  readonly definition: protoLoader.PackageDefinition;
}

let cached: LoadedProtos | undefined;

export function loadProtos(): LoadedProtos {
  if (cached) return cached;
  const def = protoLoader.loadSync(['envoy/service/auth/v3/external_auth.proto', 'grpc/health/v1/health.proto'], LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  const service = pkg.envoy.service.auth.v3.Authorization.service;
  cached = {
    authorization: service,
    authorizationServer: (current) =>
      tuneCheckMethod(service, (bytes) => {
        const serving = current();
        return { serving, request: decodeOrMark(bytes, serving.wantedHeaders) };
      }),
    health: pkg.grpc.health.v1.Health.service,
    definition: def,
  };
  return cached;
}

function decodeOrMark(bytes: Buffer, wanted: WantedHeaders): WireCheckRequest {
  try {
    return decodeCheckRequest(bytes, wanted);
  } catch {
    return UNDECODABLE_REQUEST;
  }
}

/**
 * Check, tuned for the hot path:
 * - requests are decoded by `decode`, which must not throw (bytes that do not decode are
 *   UNDECODABLE_REQUEST, an explicit request_invalid deny, never an RPC error);
 * - a response that is already a Buffer (EnvoyResponder.encode) is sent as is.
 * test/helpers/reference-codecs.ts tunes the same method with protobufjs' decoder.
 */
export function tuneCheckMethod(service: grpc.ServiceDefinition, decode: (bytes: Buffer) => unknown): grpc.ServiceDefinition {
  const check = service.Check;
  if (!check) throw new Error('Authorization service has no Check method');
  return {
    ...service,
    Check: {
      ...check,
      requestDeserialize: decode,
      responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : check.responseSerialize(value)),
    },
  };
}

export const AUTHORIZATION_SERVICE = 'envoy.service.auth.v3.Authorization';
