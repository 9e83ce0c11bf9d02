import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { UNDECODABLE_REQUEST } from './check-request.js';
import { decodeCheckRequest } from './decode.js';
import type { WantedHeaders } from './wanted-headers.js';

/** Works from src/ (tsx, vitest) and from dist/src/ alike. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('zt-authz: package.json not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

export const PROTO_DIR = join(packageRoot(), 'proto');

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

export interface LoadedProtos {
  /** Check decodes requests with protobufjs (all fields); the bench's no-op baseline serves this. */
  readonly authorization: grpc.ServiceDefinition;
  /**
   * Check decodes with src/wire/decode.ts (only what the checks read, and of the headers
   * only those `wanted` returns at the time of the call); zt-authz serves this.
   */
  authorizationServer(wanted: () => WantedHeaders): grpc.ServiceDefinition;
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
    authorization: tuneCheckMethod(service, protobufjsCheckRequestDecoder()),
    authorizationServer: (wanted) => tuneCheckMethod(service, (bytes) => decodeCheckRequest(bytes, wanted())),
    health: pkg.grpc.health.v1.Health.service,
    definition: def,
  };
  return cached;
}

/**
 * protobufjs (proto-loader's own engine) decoding CheckRequest without the toObject copy
 * proto-loader adds. Loaded on first use: zt-authz itself never calls it (only the bench's
 * baseline does), and its Root would otherwise sit in every sidecar's heap.
 */
function protobufjsCheckRequestDecoder(): (bytes: Buffer) => unknown {
  let CheckRequest: protobuf.Type | undefined;
  return (bytes) => {
    if (CheckRequest === undefined) {
      const root = new protobuf.Root();
      root.resolvePath = (_origin, target) => (existsSync(join(PROTO_DIR, target)) ? join(PROTO_DIR, target) : target);
      root.loadSync('envoy/service/auth/v3/external_auth.proto', { keepCase: true });
      CheckRequest = root.lookupType('envoy.service.auth.v3.CheckRequest');
    }
    return CheckRequest.decode(bytes);
  };
}

/**
 * Check, tuned for the hot path:
 * - requests are decoded by `decode`; the checks only read fields, and absent ones read as
 *   undefined, null or '' defaults;
 * - bytes that do not decode become UNDECODABLE_REQUEST (an explicit request_invalid deny);
 * - a response that is already a Buffer (EnvoyResponder.encode) is sent as is.
 */
function tuneCheckMethod(service: grpc.ServiceDefinition, decode: (bytes: Buffer) => unknown): grpc.ServiceDefinition {
  const check = service.Check;
  if (!check) throw new Error('Authorization service has no Check method');
  return {
    ...service,
    Check: {
      ...check,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch {
          return UNDECODABLE_REQUEST;
        }
      },
      responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : check.responseSerialize(value)),
    },
  };
}

export const AUTHORIZATION_SERVICE = 'envoy.service.auth.v3.Authorization';
