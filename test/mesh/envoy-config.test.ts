import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { DEMO_CONFIG } from '../../src/config/defaults.js';
import { configSchema } from '../../src/config/schema/index.js';
import { BOOTSTRAP_TYPE, decodeEnvoyMessage, envoyProtos } from './envoy-proto.js';
import { isPlainObject } from './proto-json.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENVOY_DIR = join(ROOT, 'envoy');
const EXT_AUTHZ = 'envoy.filters.http.ext_authz';
const T = 'type.googleapis.com/envoy.extensions.';
const HCM_TYPE = `${T}filters.network.http_connection_manager.v3.HttpConnectionManager`;
const EXT_AUTHZ_TYPE = `${T}filters.http.ext_authz.v3.ExtAuthz`;
const ROUTER_TYPE = `${T}filters.http.router.v3.Router`;
const HTTP_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const DOWNSTREAM_TLS = `${T}transport_sockets.tls.v3.DownstreamTlsContext`;

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (isPlainObject(v) ? v : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
/** google.protobuf.BoolValue and friends decode to { value }. */
const unwrap = (v: unknown): unknown => (isPlainObject(v) && Object.keys(v).length === 1 && 'value' in v ? v['value'] : v);
const seconds = (d: unknown): number => Number(obj(d)['seconds'] ?? 0) + Number(obj(d)['nanos'] ?? 0) / 1e9;

const server = configSchema.parse({}).server;
const shippedPolicy = configSchema.parse(YAML.parse(readFileSync(join(ROOT, 'deploy/base/config.yaml'), 'utf8'))).policy;
const demoPolicy = configSchema.parse(DEMO_CONFIG).policy;

const files = readdirSync(ENVOY_DIR).filter((f) => /\.ya?ml$/.test(f)).sort();

function readJson(file: string): unknown {
  return YAML.parse(readFileSync(join(ENVOY_DIR, file), 'utf8'));
}

interface Hcm {
  listener: Obj;
  chain: Obj;
  hcm: Obj;
}

function connectionManagers(bootstrap: Obj): Hcm[] {
  const out: Hcm[] = [];
  for (const listener of arr(obj(bootstrap['static_resources'])['listeners']).map(obj)) {
    for (const chain of arr(listener['filter_chains']).map(obj)) {
      for (const filter of arr(chain['filters']).map(obj)) {
        const tc = obj(filter['typed_config']);
        if (tc['@type'] === HCM_TYPE) out.push({ listener, chain, hcm: tc });
      }
    }
  }
  return out;
}

function routesOf(hcm: Obj): Obj[] {
  return arr(obj(hcm['route_config'])['virtual_hosts']).flatMap((vh) => arr(obj(vh)['routes']).map(obj));
}

function perRouteAuthz(route: Obj): Obj | undefined {
  const cfg = obj(route['typed_per_filter_config'])[EXT_AUTHZ];
  return isPlainObject(cfg) ? cfg : undefined;
}

function cluster(bootstrap: Obj, name: string): Obj {
  const found = arr(obj(bootstrap['static_resources'])['clusters']).map(obj).find((c) => c['name'] === name);
  if (!found) throw new Error(`cluster ${name} is not defined`);
  return found;
}

it('finds the shipped Envoy configs', () => {
  expect(files).toEqual(expect.arrayContaining(['front-proxy.yaml', 'sidecar.yaml']));
});

describe.each(files)('envoy/%s', (file) => {
  let bootstrap: Obj;
  let managers: Hcm[];

  beforeAll(() => {
    // Throws (and fails every test below) on any unknown field, wrong type or unloadable Any.
    bootstrap = decodeEnvoyMessage(BOOTSTRAP_TYPE, readJson(file)).view;
    managers = connectionManagers(bootstrap);
  });

  it('decodes strictly into envoy.config.bootstrap.v3.Bootstrap, typed_configs included', () => {
    expect(managers.length).toBeGreaterThan(0);
    // The Any payloads were decoded into their own message types, not left as opaque bytes.
    for (const { hcm } of managers) {
      expect(arr(hcm['http_filters']).map((f) => obj(obj(f)['typed_config'])['@type'])).toEqual([EXT_AUTHZ_TYPE, ROUTER_TYPE]);
    }
  });

  it('runs ext_authz first, fail-closed, V3, with a short timeout and a 5xx on errors', () => {
    for (const { hcm } of managers) {
      const filters = arr(hcm['http_filters']).map(obj);
      expect(filters[0]?.['name']).toBe(EXT_AUTHZ);
      expect(filters.at(-1)?.['name']).toBe('envoy.filters.http.router');
      const authz = obj(filters[0]?.['typed_config']);
      expect(authz['failure_mode_allow'] ?? false).toBe(false);
      expect(authz['transport_api_version']).toBe('V3');
      const grpc = obj(authz['grpc_service']);
      const timeout = seconds(grpc['timeout']);
      expect(grpc['timeout']).toBeDefined();
      expect(timeout).toBeGreaterThan(0);
      expect(timeout).toBeLessThanOrEqual(0.25);
      // zt-authz answers within its own budget, so a slow check is an explicit deny with a reason.
      expect(timeout * 1000).toBeGreaterThan(server.decision_timeout_ms);
      expect(obj(authz['status_on_error'])['code']).toBe('ServiceUnavailable');
      expect(authz['http_service']).toBeUndefined();
      expect(authz['with_request_body']).toBeUndefined();
    }
  });

  it('sends ext_authz to an HTTP/2 cluster with a connect timeout, circuit breakers and a safe keepalive', () => {
    for (const { hcm } of managers) {
      const authz = obj(obj(arr(hcm['http_filters'])[0])['typed_config']);
      const name = obj(obj(authz['grpc_service'])['envoy_grpc'])['cluster_name'];
      expect(typeof name).toBe('string');
      const c = cluster(bootstrap, name as string);
      const options = obj(obj(c['typed_extension_protocol_options'])[HTTP_OPTIONS]);
      expect(options['@type']).toBe(`type.googleapis.com/${HTTP_OPTIONS}`);
      const h2 = obj(obj(options['explicit_http_config'])['http2_protocol_options']);
      expect(obj(options['explicit_http_config'])['http2_protocol_options']).toBeDefined();
      const keepalive = obj(h2['connection_keepalive']);
      if (keepalive['interval'] !== undefined) {
        expect(seconds(keepalive['interval']) * 1000).toBeGreaterThan(server.limits.keepalive_min_ping_interval_ms);
      }
      expect(seconds(c['connect_timeout'])).toBeGreaterThan(0);
      expect(seconds(c['connect_timeout'])).toBeLessThanOrEqual(1);
      const thresholds = arr(obj(c['circuit_breakers'])['thresholds']).map(obj);
      expect(thresholds.length).toBeGreaterThan(0);
      for (const t of thresholds) {
        expect(unwrap(t['max_requests'])).toBeGreaterThan(0);
        expect(unwrap(t['max_pending_requests'])).toBeGreaterThan(0);
      }
      const endpoints = arr(obj(c['load_assignment'])['endpoints']).flatMap((e) => arr(obj(e)['lb_endpoints']));
      const ports = endpoints.map((e) => obj(obj(obj(obj(e)['endpoint'])['address'])['socket_address'])['port_value']);
      expect(ports.length).toBeGreaterThan(0);
      const grpcPort = Number(server.grpc.address.split(':').at(-1));
      for (const port of ports) expect(port).toBe(grpcPort);
    }
  });

  it('normalizes paths before authorizing and drops client-sent identity headers', () => {
    for (const { hcm } of managers) {
      expect(unwrap(hcm['normalize_path'])).toBe(true);
      expect(hcm['merge_slashes']).toBe(true);
      expect(hcm['path_with_escaped_slashes_action']).toMatch(/^(UNESCAPE_AND_REDIRECT|UNESCAPE_AND_FORWARD|REJECT_REQUEST)$/);
      const removed = arr(hcm['early_header_mutation_extensions'])
        .flatMap((e) => arr(obj(obj(e)['typed_config'])['mutations']))
        .map((m) => obj(m)['remove']);
      const h = shippedPolicy.headers;
      expect(removed).toEqual(expect.arrayContaining([h.user_id, h.risk_score, h.decision_id]));
    }
  });

  it('turns ext_authz off only for an exact /healthz route', () => {
    for (const { hcm } of managers) {
      const routes = routesOf(hcm);
      const disabled = routes.filter((r) => perRouteAuthz(r)?.['disabled'] === true);
      expect(disabled.length).toBe(1);
      // An exact match: a prefix would also exempt /healthzanything.
      expect(obj(disabled[0]?.['match'])).toEqual({ path: '/healthz' });
      for (const r of routes) {
        const per = perRouteAuthz(r);
        if (per) expect(per['@type']).toBe(`${T}filters.http.ext_authz.v3.ExtAuthzPerRoute`);
      }
    }
  });

  it('maps routes to resources that exist in the shipped and the demo policy', () => {
    const resources = managers.flatMap(({ hcm }) =>
      routesOf(hcm).map((r) => obj(obj(perRouteAuthz(r)?.['check_settings'])['context_extensions'])['resource']).filter((x) => x !== undefined),
    );
    expect(resources).toContain('orders');
    for (const resource of resources) {
      expect(Object.keys(shippedPolicy.resources)).toContain(resource);
      expect(Object.keys(demoPolicy.resources)).toContain(resource);
    }
  });

  it('logs the decision id, reason, subject and risk that zt-authz returns as dynamic metadata', () => {
    for (const { hcm } of managers) {
      const formats = arr(hcm['access_log']).map((l) => JSON.stringify(obj(obj(l)['typed_config'])['log_format']));
      const joined = formats.join('\n');
      for (const key of ['decision_id', 'reason', 'sub', 'risk_score']) {
        expect(joined).toContain(`%DYNAMIC_METADATA(${EXT_AUTHZ}:${key})%`);
      }
    }
  });

  it('sends the peer certificate to zt-authz wherever clients present one', () => {
    for (const { chain, hcm } of managers) {
      const tls = obj(obj(chain['transport_socket'])['typed_config']);
      const authz = obj(obj(arr(hcm['http_filters'])[0])['typed_config']);
      if (tls['@type'] === DOWNSTREAM_TLS && unwrap(tls['require_client_certificate']) === true) {
        expect(authz['include_peer_certificate']).toBe(true);
        expect(arr(obj(obj(tls['common_tls_context'])['validation_context'])['match_typed_subject_alt_names']).length).toBeGreaterThan(0);
      }
    }
  });

  it('keeps the admin API on loopback', () => {
    const admin = obj(obj(obj(bootstrap['admin'])['address'])['socket_address']);
    expect(admin['address']).toBe('127.0.0.1');
  });
});

it('ships an mTLS variant that forwards the client certificate', () => {
  const mtls = files.filter((f) => {
    const b = decodeEnvoyMessage(BOOTSTRAP_TYPE, readJson(f)).view;
    return connectionManagers(b).some(({ chain }) => unwrap(obj(obj(chain['transport_socket'])['typed_config'])['require_client_certificate']) === true);
  });
  expect(mtls.length).toBeGreaterThan(0);
});

describe('the strict decoder rejects what Envoy would reject', () => {
  const sidecar = () => readJson('sidecar.yaml') as Obj;
  const hcmOf = (b: Obj) => obj(obj(arr(obj(arr(obj(arr(obj(b['static_resources'])['listeners'])[0])['filter_chains'])[0])['filters'])[0])['typed_config']);
  const authzOf = (b: Obj) => obj(obj(arr(hcmOf(b)['http_filters'])[0])['typed_config']);
  const expectRejected = (mutate: (b: Obj) => void, message: RegExp) => {
    const b = sidecar();
    mutate(b);
    expect(() => decodeEnvoyMessage(BOOTSTRAP_TYPE, b)).toThrow(message);
  };

  it('accepts the unmodified sidecar (control)', () => {
    expect(() => decodeEnvoyMessage(BOOTSTRAP_TYPE, sidecar())).not.toThrow();
  });

  it('rejects an unknown field inside the ext_authz typed_config', () => {
    expectRejected((b) => {
      // A one-letter typo that a lenient loader would silently ignore, leaving the default.
      authzOf(b)['failure_mode_alow'] = false;
    }, /typed_config\.failure_mode_alow: unknown field of \.envoy\.extensions\.filters\.http\.ext_authz\.v3\.ExtAuthz/);
  });

  it('rejects an unknown top-level field', () => {
    expectRejected((b) => {
      b['static_resource'] = {};
    }, /unknown field/);
  });

  it('rejects wrong types: a bare number as a Duration, a string as a bool, a string as a port', () => {
    expectRejected((b) => {
      obj(authzOf(b)['grpc_service'])['timeout'] = 0.2;
    }, /timeout: expected a Duration string/);
    expectRejected((b) => {
      authzOf(b)['failure_mode_allow'] = 'false';
    }, /failure_mode_allow: expected a boolean/);
    expectRejected((b) => {
      const listener = obj(arr(obj(b['static_resources'])['listeners'])[0]);
      obj(obj(listener['address'])['socket_address'])['port_value'] = '8080x';
    }, /port_value: expected an integer/);
  });

  it('rejects unknown and deprecated enum values', () => {
    expectRejected((b) => {
      authzOf(b)['transport_api_version'] = 'V4';
    }, /unknown \.envoy\.config\.core\.v3\.ApiVersion value "V4"/);
    expectRejected((b) => {
      authzOf(b)['transport_api_version'] = 'V2';
    }, /deprecated enum value/);
  });

  it('rejects an Any whose @type cannot be loaded, and one without @type', () => {
    expectRejected((b) => {
      authzOf(b)['@type'] = `${T}filters.http.ext_authz.v3.ExtAuthzz`;
    }, /cannot load envoy\.extensions\.filters\.http\.ext_authz\.v3\.ExtAuthzz/);
    expectRejected((b) => {
      delete authzOf(b)['@type'];
    }, /needs "@type"/);
  });

  it('rejects deprecated fields and protoc-gen-validate violations', () => {
    expectRejected((b) => {
      // Deprecated since v3 in favour of typed_extension_protocol_options.
      obj(arr(obj(b['static_resources'])['clusters'])[1])['http2_protocol_options'] = {};
    }, /deprecated field/);
    expectRejected((b) => {
      obj(arr(obj(b['static_resources'])['clusters'])[1])['connect_timeout'] = '0s';
    }, /connect_timeout: out of range/);
    expectRejected((b) => {
      obj(arr(obj(b['static_resources'])['clusters'])[1])['name'] = '';
    }, /name: must be at least 1 characters/);
    expectRejected((b) => {
      const route = obj(routesOf(hcmOf(b))[0]);
      route['match'] = { path: '/healthz', prefix: '/' };
    }, /oneof path_specifier has several members set/);
  });

  it('loads every Any type the configs use from the official protos', () => {
    const protos = envoyProtos();
    for (const name of [
      'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
      'envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
      'envoy.extensions.filters.http.router.v3.Router',
      'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      HTTP_OPTIONS,
      'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
      'envoy.extensions.access_loggers.file.v3.FileAccessLog',
    ]) {
      expect(protos.lookupMessage(name).fullName).toBe(`.${name}`);
    }
  });
});
