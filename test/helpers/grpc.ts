import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS } from '../../src/wire/protos.js';
import type { WireCheckRequest } from '../../src/wire/check-request.js';
import type { WireCheckResponse } from '../../src/response/envoy.js';

/** A real grpc-js client for Authorization/Check and grpc.health.v1, over a real socket. */
export interface AuthzClient {
  check(req: WireCheckRequest, opts?: { deadlineMs?: number; metadata?: grpc.Metadata }): Promise<CheckResult>;
  health(service?: string): Promise<number>;
  close(): void;
  raw: grpc.Client;
}

export interface CheckResult {
  /** gRPC status of the RPC itself (0 when the server answered with a CheckResponse). */
  rpcCode: number;
  rpcDetails?: string;
  response?: WireCheckResponse;
}

let ctor: { Authorization: grpc.ServiceClientConstructor; Health: grpc.ServiceClientConstructor } | undefined;

function clients() {
  if (ctor) return ctor;
  const def = protoLoader.loadSync(['envoy/service/auth/v3/external_auth.proto', 'grpc/health/v1/health.proto'], LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  ctor = { Authorization: pkg.envoy.service.auth.v3.Authorization, Health: pkg.grpc.health.v1.Health };
  return ctor;
}

export function authzClient(address: string, options: grpc.ChannelOptions = {}): AuthzClient {
  const c = clients();
  const client = new c.Authorization(address, grpc.credentials.createInsecure(), options);
  const health = new c.Health(address, grpc.credentials.createInsecure(), options);
  return {
    raw: client,
    check(req, opts = {}) {
      return new Promise((resolve) => {
        const deadline = new Date(Date.now() + (opts.deadlineMs ?? 5000));
        (client as unknown as { Check: Function }).Check(
          req,
          opts.metadata ?? new grpc.Metadata(),
          { deadline },
          (err: grpc.ServiceError | null, res?: WireCheckResponse) => {
            if (err) resolve({ rpcCode: err.code, rpcDetails: err.details });
            else resolve({ rpcCode: 0, response: res! });
          },
        );
      });
    },
    health(service = '') {
      return new Promise((resolve, reject) => {
        (health as unknown as { Check: Function }).Check({ service }, (err: grpc.ServiceError | null, res?: { status: number | string }) => {
          if (err) reject(err);
          else resolve(Number(res?.status ?? 0));
        });
      });
    },
    close() {
      client.close();
      health.close();
    },
  };
}

export interface RequestSpec {
  method?: string;
  path?: string;
  host?: string;
  headers?: Record<string, string>;
  token?: string;
  sourceIp?: string;
  principal?: string;
  contextExtensions?: Record<string, string>;
}

/** A CheckRequest shaped like the ones Envoy sends (lower-case headers, pseudo-headers, raw path). */
export function checkRequest(spec: RequestSpec = {}): WireCheckRequest {
  const method = spec.method ?? 'GET';
  const path = spec.path ?? '/api/orders';
  const host = spec.host ?? 'orders.prod.svc.cluster.local';
  const headers: Record<string, string> = {
    ':authority': host,
    ':method': method,
    ':path': path,
    ':scheme': 'http',
    'user-agent': 'curl/8.5.0',
    'x-forwarded-proto': 'http',
    'x-request-id': '5d1a2b6e-3c4f-4e0a-9b7d-1f2e3d4c5b6a',
    ...(spec.token ? { authorization: `Bearer ${spec.token}` } : {}),
    ...spec.headers,
  };
  return {
    attributes: {
      source: {
        address: { socket_address: { address: spec.sourceIp ?? '10.1.2.3', port_value: 51234 } },
        ...(spec.principal ? { principal: spec.principal } : {}),
      },
      destination: {
        address: { socket_address: { address: '10.1.9.9', port_value: 8080 } },
        principal: 'spiffe://cluster.local/ns/prod/sa/orders',
      },
      request: {
        time: { seconds: String(Math.floor(Date.now() / 1000)), nanos: 0 },
        http: {
          id: headers['x-request-id']!,
          method,
          headers,
          path,
          host,
          scheme: 'http',
          protocol: 'HTTP/1.1',
        },
      },
      ...(spec.contextExtensions ? { context_extensions: spec.contextExtensions } : {}),
    },
  };
}

/** The response header value the sidecar set, from ok_response or denied_response. */
export function responseHeader(res: WireCheckResponse | undefined, name: string): string | undefined {
  const list = res?.ok_response?.headers ?? res?.denied_response?.headers ?? [];
  return list.find((h) => h.header.key === name)?.header.value;
}
