import fc from 'fast-check';
import { officialRoot } from './official-protos.js';

/**
 * Generated CheckRequests for the decoder tests, encoded with Envoy's official protos: every
 * field of the request the checks may read, and fields they never read, present or absent.
 */
const official = officialRoot(['envoy/service/auth/v3/external_auth.proto']).lookupType('envoy.service.auth.v3.CheckRequest');
export const encodeCheckRequest = (obj: Record<string, unknown>) => Buffer.from(official.encode(official.fromObject(obj)).finish());

export const token = fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/);
export const text = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: 'grapheme', maxLength: 10 }), token);
// "__proto__" is left out here: protobufjs drops it (plain-object maps); see the test below.
export const headerName = fc.oneof(fc.constantFrom(':method', ':path', ':authority', ':scheme', 'host', 'authorization', 'x-forwarded-for', 'x-request-id', 'cookie', 'x-token', 'x-device-ok'), fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/));
const address = fc.oneof(fc.ipV4(), fc.ipV6(), fc.constant(''), text);
const peer = fc.record(
  {
    address: fc.record({ socket_address: fc.record({ address, port_value: fc.nat(65535) }, { requiredKeys: [] }) }, { requiredKeys: [] }),
    service: text,
    labels: fc.dictionary(token, text, { maxKeys: 3 }),
    principal: fc.oneof(fc.constant('spiffe://cluster.local/ns/prod/sa/orders'), text),
    certificate: text,
  },
  { requiredKeys: [] },
);
const http = fc.record(
  {
    id: text,
    method: fc.oneof(fc.constantFrom('GET', 'post', 'DELETE', ''), text),
    headers: fc.dictionary(headerName, text, { maxKeys: 8 }),
    header_map: fc.record({ headers: fc.array(fc.record({ key: headerName, value: text, raw_value: fc.uint8Array({ maxLength: 12 }).map((u) => Buffer.from(u)) }, { requiredKeys: [] }), { maxLength: 5 }) }),
    path: fc.oneof(fc.constantFrom('/api/orders', '/api/orders?x=1', '//admin', '/api/..%2Fadmin', '/', ''), text.map((t) => `/${t}`)),
    host: fc.oneof(fc.constantFrom('orders.prod.svc.cluster.local:8080', '[::1]:80'), text),
    scheme: fc.constantFrom('http', 'https', ''),
    query: text,
    fragment: text,
    size: fc.nat(),
    protocol: fc.constantFrom('HTTP/1.1', 'HTTP/2'),
    body: text,
  },
  { requiredKeys: [] },
);
export const checkRequestObject = fc.record(
  {
    attributes: fc.record(
      {
        source: peer,
        destination: peer,
        request: fc.record({ time: fc.record({ seconds: fc.nat(), nanos: fc.nat(999_999_999) }), http }, { requiredKeys: [] }),
        context_extensions: fc.dictionary(token, text, { maxKeys: 3 }),
        metadata_context: fc.record({ filter_metadata: fc.dictionary(token, fc.record({ fields: fc.dictionary(token, fc.record({ string_value: text })) }), { maxKeys: 2 }) }),
        tls_session: fc.record({ sni: text }),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);

