import { describe, expect, it } from 'vitest';
import type protobuf from 'protobufjs';
import { officialRoot, trimmedRoot } from '../helpers/official-protos.js';

/**
 * proto/ holds a trimmed copy of Envoy's ext_authz protos. This proves, on every run, that the
 * copy and the official definitions agree on the wire in both directions: same field numbers,
 * same types, same packages (so the gRPC method path is the same).
 */
const FILES = ['envoy/service/auth/v3/external_auth.proto'];
const official = officialRoot(FILES);
const ours = trimmedRoot(FILES);

const toObj = (type: protobuf.Type, msg: protobuf.Message) =>
  type.toObject(msg, { longs: String, enums: Number, bytes: String, defaults: false, arrays: false, objects: false });

function roundTrip(name: string, value: Record<string, unknown>) {
  const o = official.lookupType(name);
  const t = ours.lookupType(name);
  const officialBytes = o.encode(o.fromObject(value)).finish();
  const ourBytes = t.encode(t.fromObject(value)).finish();
  return { o, t, officialBytes, ourBytes };
}

const fullRequest = {
  attributes: {
    source: {
      address: { socket_address: { address: '10.0.0.7', port_value: 53211, protocol: 0 } },
      service: 'web',
      labels: { app: 'web', version: 'v1' },
      principal: 'spiffe://cluster.local/ns/prod/sa/web',
      certificate: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    },
    destination: {
      address: { socket_address: { address: '10.0.0.9', port_value: 8080 } },
      principal: 'spiffe://cluster.local/ns/prod/sa/api',
    },
    request: {
      time: { seconds: '1763800000', nanos: 123456789 },
      http: {
        id: '12345678901234567890',
        method: 'POST',
        headers: { ':authority': 'api.prod', ':path': '/api/orders?x=1', authorization: 'Bearer abc.def.ghi' },
        header_map: { headers: [{ key: 'x-a', value: '1' }, { key: 'x-b', raw_value: Buffer.from('raw').toString('base64') }] },
        path: '/api/orders?x=1',
        host: 'api.prod',
        scheme: 'https',
        query: '',
        fragment: '',
        size: '42',
        protocol: 'HTTP/2',
        body: '{"a":1}',
        raw_body: Buffer.from([0, 1, 2, 255]).toString('base64'),
      },
    },
    context_extensions: { resource: 'orders', tier: 'gold' },
    tls_session: { sni: 'api.prod.svc' },
  },
};

const okResponse = {
  status: { code: 0, message: '' },
  ok_response: {
    headers: [{ header: { key: 'x-user-id', value: 'alice' }, append_action: 2 }, { header: { key: 'x-old', value: 'v' }, append: { value: false }, keep_empty_value: true }],
    headers_to_remove: ['x-spoofed'],
    response_headers_to_add: [{ header: { key: 'x-zt-authz-shadow-deny', value: 'risk_too_high' }, append_action: 2 }],
    query_parameters_to_set: [{ key: 'a', value: 'b' }],
    query_parameters_to_remove: ['token'],
  },
  dynamic_metadata: {
    fields: {
      decision_id: { stringValue: 'abc-1' },
      risk_score: { numberValue: 0.25 },
      nested: { structValue: { fields: { ok: { boolValue: true } } } },
    },
  },
};

const deniedResponse = {
  status: { code: 16, message: 'token_expired' },
  denied_response: {
    status: { code: 401 },
    headers: [{ header: { key: 'www-authenticate', value: 'Bearer error="invalid_token"' }, append_action: 2 }],
    body: '{"error":"token_expired","decision_id":"abc-2"}',
  },
  dynamic_metadata: { fields: { reason: { stringValue: 'token_expired' } } },
};

describe('trimmed protos are wire-compatible with the official Envoy definitions', () => {
  it.each([
    ['envoy.service.auth.v3.CheckRequest', fullRequest],
    ['envoy.service.auth.v3.CheckResponse', okResponse],
    ['envoy.service.auth.v3.CheckResponse', deniedResponse],
  ])('%s encodes to identical bytes and decodes both ways', (name, value) => {
    const { o, t, officialBytes, ourBytes } = roundTrip(name, value as Record<string, unknown>);
    expect(Buffer.from(ourBytes).equals(Buffer.from(officialBytes))).toBe(true);
    expect(toObj(t, t.decode(officialBytes))).toEqual(toObj(o, o.decode(officialBytes)));
    expect(toObj(o, o.decode(ourBytes))).toEqual(toObj(o, o.decode(officialBytes)));
    // And the bytes carry real content, not two equally empty encodings.
    expect(ourBytes.length).toBeGreaterThan(40);
  });

  it('carries Struct values in dynamic_metadata (protobufjs names them in camelCase)', () => {
    const { t, officialBytes } = roundTrip('envoy.service.auth.v3.CheckResponse', okResponse);
    const decoded = toObj(t, t.decode(officialBytes)) as typeof okResponse;
    expect(decoded.dynamic_metadata.fields.decision_id).toEqual({ stringValue: 'abc-1' });
    expect(decoded.dynamic_metadata.fields.risk_score).toEqual({ numberValue: 0.25 });
    expect(decoded.dynamic_metadata.fields.nested).toEqual({ structValue: { fields: { ok: { boolValue: true } } } });
  });

  it('skips official-only fields (metadata_context) without disturbing the rest', () => {
    const o = official.lookupType('envoy.service.auth.v3.CheckRequest');
    const t = ours.lookupType('envoy.service.auth.v3.CheckRequest');
    const withMeta = {
      ...fullRequest,
      attributes: { ...fullRequest.attributes, metadata_context: { filter_metadata: { 'envoy.filters.http.jwt_authn': { fields: { sub: { stringValue: 'x' } } } } } },
    };
    const bytes = o.encode(o.fromObject(withMeta)).finish();
    expect(toObj(t, t.decode(bytes))).toEqual(fullRequest);
  });

  it('declares the same service and method path', () => {
    const os = official.lookupService('envoy.service.auth.v3.Authorization');
    const ts = ours.lookupService('envoy.service.auth.v3.Authorization');
    expect(Object.keys(ts.methods)).toEqual(Object.keys(os.methods));
    expect(ts.methods.Check!.requestType).toBe(os.methods.Check!.requestType);
    expect(ts.methods.Check!.responseType).toBe(os.methods.Check!.responseType);
  });

  it('keeps every field number and type of the messages it copies', () => {
    const names = [
      'envoy.service.auth.v3.AttributeContext',
      'envoy.service.auth.v3.AttributeContext.Peer',
      'envoy.service.auth.v3.AttributeContext.Request',
      'envoy.service.auth.v3.AttributeContext.HttpRequest',
      'envoy.service.auth.v3.OkHttpResponse',
      'envoy.service.auth.v3.DeniedHttpResponse',
      'envoy.config.core.v3.HeaderValueOption',
      'envoy.config.core.v3.HeaderValue',
      'envoy.config.core.v3.SocketAddress',
      'envoy.type.v3.HttpStatus',
      'google.rpc.Status',
    ];
    for (const name of names) {
      const o = official.lookupType(name);
      const t = ours.lookupType(name);
      for (const field of t.fieldsArray) {
        const match = o.fields[field.name];
        expect(match, `${name}.${field.name}`).toBeDefined();
        expect(field.id, `${name}.${field.name} number`).toBe(match!.id);
        expect(field.type, `${name}.${field.name} type`).toBe(match!.type);
        expect(field.repeated, `${name}.${field.name} repeated`).toBe(match!.repeated);
        expect(!!field.map, `${name}.${field.name} map`).toBe(!!match!.map);
      }
    }
    const oCodes = official.lookupEnum('envoy.type.v3.StatusCode').values;
    expect(ours.lookupEnum('envoy.type.v3.StatusCode').values).toEqual(oCodes);
  });
});
