/**
 * The parts of envoy.service.auth.v3.CheckRequest the sidecar reads, as @grpc/proto-loader decodes
 * them (keepCase, defaults off): every field may be absent, so nothing here is trusted to exist.
 */
export interface WireHeaderValue {
  key?: string;
  value?: string;
  raw_value?: Buffer;
}

export interface WirePeer {
  address?: { socket_address?: { address?: string; port_value?: number }; pipe?: { path?: string } };
  service?: string;
  labels?: Record<string, string>;
  principal?: string;
  certificate?: string;
}

export interface WireCheckRequest {
  attributes?: {
    source?: WirePeer;
    destination?: WirePeer;
    request?: {
      time?: { seconds?: string | number; nanos?: number };
      http?: {
        id?: string;
        method?: string;
        headers?: Record<string, string>;
        header_map?: { headers?: WireHeaderValue[] };
        path?: string;
        host?: string;
        scheme?: string;
        query?: string;
        fragment?: string;
        protocol?: string;
      };
    };
    context_extensions?: Record<string, string>;
    tls_session?: { sni?: string };
  };
}

/**
 * Stands in for a CheckRequest whose bytes do not decode. grpc-js would answer such a frame with
 * an INTERNAL error, which Envoy counts as an authorization *failure* (so `failure_mode_allow`
 * decides); passing a marker through lets the checker answer with an explicit request_invalid deny.
 */
export const UNDECODABLE_REQUEST: WireCheckRequest = Object.freeze({});

