import { describe, expect, it } from 'vitest';
import { normalizePath, PathError } from '../../src/normalize/path.js';
import { clientIp, normalizeIp } from '../../src/normalize/client-ip.js';
import { normalizeCheckRequest, RequestError } from '../../src/normalize/request.js';
import { checkRequest } from '../helpers/grpc.js';

describe('normalizePath: one canonical path before any matching', () => {
  it.each([
    ['/api/orders', '/api/orders', ''],
    ['/api/orders?id=1&x=2', '/api/orders', 'id=1&x=2'],
    ['/api/orders#frag', '/api/orders', ''],
    ['//admin', '/admin', ''],
    ['///admin//users', '/admin/users', ''],
    ['/api/./orders', '/api/orders', ''],
    ['/api/../admin', '/admin', ''],
    ['/../../admin', '/admin', ''],
    ['/api/orders/..', '/api', ''],
    ['/api%2F..%2Fadmin', '/admin', ''],
    ['/api/%2e%2e/admin', '/admin', ''],
    ['/%61dmin', '/admin', ''],
    ['/a%252Fb', '/a%2Fb', ''],
    ['/api\\..\\admin', '/admin', ''],
    ['/api/orders/', '/api/orders/', ''],
    ['/', '/', ''],
    ['/?q=%2F..', '/', 'q=%2F..'],
    ['*', '/', ''],
  ])('%s → %s', (raw, path, query) => {
    expect(normalizePath(raw)).toEqual({ path, query });
  });

  it.each([['orders'], [''], ['/bad%zz'], ['/nul%00byte'], ['/crlf%0d%0aX-Injected: 1'], ['http://evil/x']])('rejects %j', (raw) => {
    expect(() => normalizePath(raw)).toThrow(PathError);
  });
});

describe('normalizeIp and clientIp', () => {
  it.each([
    ['10.0.0.1', '10.0.0.1'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['::FFFF:10.0.0.1', '10.0.0.1'],
    ['0:0:0:0:0:ffff:10.0.0.1', '10.0.0.1'],
    ['[2001:DB8::1]', '2001:db8::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['not-an-ip', ''],
    ['', ''],
    ['10.0.0.256', ''],
  ])('%j → %j', (input, out) => {
    expect(normalizeIp(input)).toBe(out);
  });

  it('ignores x-forwarded-for unless hops are trusted', () => {
    expect(clientIp('10.1.1.1', '6.6.6.6', 0)).toBe('10.1.1.1');
  });

  it('takes the N-th entry from the right with N trusted hops, never a client-supplied one', () => {
    const xff = '6.6.6.6, 203.0.113.7, 10.0.0.2';
    expect(clientIp('10.1.1.1', xff, 1)).toBe('10.0.0.2');
    expect(clientIp('10.1.1.1', xff, 2)).toBe('203.0.113.7');
    expect(clientIp('10.1.1.1', 'garbage', 1)).toBe('10.1.1.1');
  });
});

describe('normalizeCheckRequest', () => {
  const opts = { trustedXffHops: 0 };

  it('reads what Envoy sends', () => {
    const req = normalizeCheckRequest(checkRequest({ method: 'post', path: '//api/orders/../orders/7?x=1', sourceIp: '::ffff:192.0.2.9', principal: 'spiffe://cluster.local/ns/prod/sa/web', contextExtensions: { resource: 'orders' } }), opts);
    expect(req).toMatchObject({
      method: 'POST',
      path: '/api/orders/7',
      query: 'x=1',
      host: 'orders.prod.svc.cluster.local',
      clientIp: '192.0.2.9',
      principal: 'spiffe://cluster.local/ns/prod/sa/web',
      contextExtensions: { resource: 'orders' },
    });
  });

  it.each([
    ['Orders.Example.COM', 'orders.example.com'],
    ['orders.example.com:8443', 'orders.example.com'],
    ['orders.example.com.', 'orders.example.com'],
    ['orders.example.com.:8443', 'orders.example.com'],
    ['[2001:db8::1]:8443', '[2001:db8::1]'],
  ])('host %s → %s', (host, out) => {
    expect(normalizeCheckRequest(checkRequest({ host }), opts).host).toBe(out);
  });

  it('joins repeated header_map entries like Envoy joins the map form', () => {
    const req = normalizeCheckRequest(
      {
        attributes: {
          request: {
            http: {
              method: 'GET',
              path: '/x',
              header_map: { headers: [{ key: 'Authorization', value: 'Bearer a' }, { key: 'authorization', raw_value: Buffer.from('Bearer b') }] },
            },
          },
        },
      },
      opts,
    );
    expect(req.headers.authorization).toBe('Bearer a,Bearer b');
  });

  it.each([
    ['no attributes', {}],
    ['no http', { attributes: { request: {} } }],
    ['no method', { attributes: { request: { http: { path: '/x' } } } }],
    ['no path', { attributes: { request: { http: { method: 'GET' } } } }],
    ['bad path', { attributes: { request: { http: { method: 'GET', path: '/%zz' } } } }],
  ])('rejects a request with %s', (_name, msg) => {
    expect(() => normalizeCheckRequest(msg, opts)).toThrow(RequestError);
  });
});
