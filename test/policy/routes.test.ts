import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NormalizedRequest } from '../../src/model.js';
import { RouteIndex } from '../../src/policy/route-index.js';
import { isCanonicalPath, type RouteSpec } from '../../src/policy/routes.js';
import { compile, evaluate, request, user } from './fixtures.js';
import { hostMatcher, patternMatcher, prefixMatcher } from './linear-routes.js';

/** The compiled index with this one route: does it match the request? */
const indexMatches = (spec: RouteSpec, req: Partial<NormalizedRequest>) => new RouteIndex([spec]).match(request(req)) !== undefined;

const ALL = user({ allowed_resources: ['*'], clearance_level: 'restricted' });

describe('isCanonicalPath', () => {
  it.each([
    ['/', true],
    ['/api/orders', true],
    ['/api/orders/', true],
    ['/api/orders;v=1', true],
    ['/a/.well-known/x', true],
    ['/a/...', true],
    ['/search/100%', true],
    ['/search/100%2', true],
    ['', false],
    ['api/orders', false],
    ['//admin', false],
    ['/api//admin', false],
    ['/api/../admin', false],
    ['/api/..', false],
    ['/api/./admin', false],
    ['/.', false],
    ['/public/..;/admin', false],
    ['/public/.;x/admin', false],
    ['/public/%2e%2e/admin', false],
    ['/public%2Fadmin', false],
    ['/public/%252e', false],
    ['/public\\..\\admin', false],
    ['/public?x=1', false],
    ['/public#frag', false],
    ['/public\x00/admin', false],
    ['/public\n', false],
    ['/public\x7f', false],
  ])('%j -> %s', (path, expected) => {
    expect(isCanonicalPath(path)).toBe(expected);
  });
});

describe('prefixMatcher at segment boundaries', () => {
  const m = prefixMatcher('/api/orders');
  it.each([
    ['/api/orders', true],
    ['/api/orders/', true],
    ['/api/orders/1', true],
    ['/api/orders/1/items', true],
    ['/api/ordersX', false],
    ['/api/orders-old', false],
    ['/api/order', false],
    ['/api', false],
    ['/API/orders', false],
    ['/x/api/orders', false],
  ])('%s -> %s', (path, expected) => {
    expect(m(path)).toBe(expected);
    expect(indexMatches({ prefix: '/api/orders' }, { path })).toBe(expected);
  });

  it('a prefix ending in / requires that slash', () => {
    const slash = prefixMatcher('/api/');
    expect(slash('/api/x')).toBe(true);
    expect(slash('/api/')).toBe(true);
    expect(slash('/api')).toBe(false);
    expect(prefixMatcher('/')('/anything/at/all')).toBe(true);
    for (const [path, expected] of [['/api/x', true], ['/api/', true], ['/api', false], ['/apix', false]] as const) {
      expect(indexMatches({ prefix: '/api/' }, { path })).toBe(expected);
    }
    expect(indexMatches({ prefix: '/' }, { path: '/anything/at/all' })).toBe(true);
    expect(indexMatches({ prefix: '/' }, { path: '/' })).toBe(true);
  });

  it('never matches a path that does not extend the prefix at a segment boundary (property)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^(\/[a-z]{1,3}){1,3}$/), fc.stringMatching(/^[a-z/]{0,8}$/), (prefix, rest) => {
        const path = prefix + rest;
        const expected = path === prefix || path.startsWith(`${prefix}/`);
        expect(prefixMatcher(prefix)(path)).toBe(expected);
        if (isCanonicalPath(path)) expect(indexMatches({ prefix }, { path })).toBe(expected);
      }),
    );
  });
});

describe('patternMatcher', () => {
  it.each([
    ['/api/*/items', '/api/7/items', true],
    ['/api/*/items', '/api/7/8/items', false],
    ['/api/*/items', '/api/items', false],
    ['/api/*/items', '/api/7/items/', false],
    ['/api/*/items', '/api/7/itemsX', false],
    ['/api/*', '/api/7', true],
    ['/api/*', '/api/', false],
    ['/api/*', '/api', false],
    ['/api/*', '/api/7/8', false],
    ['/api/**', '/api', true],
    ['/api/**', '/api/', true],
    ['/api/**', '/api/a/b/c', true],
    ['/api/**', '/apix', false],
    ['/api/**', '/apix/y', false],
    ['/*/admin/**', '/tenant/admin/users', true],
    ['/*/admin/**', '/admin', false],
    ['/', '/', true],
    ['/', '/x', false],
    ['/exact', '/exact', true],
    ['/exact', '/exact/', false],
  ])('%s vs %s -> %s', (pattern, path, expected) => {
    expect(patternMatcher(pattern)(path)).toBe(expected);
    expect(indexMatches({ pattern }, { path })).toBe(expected);
  });
});

describe('hostMatcher', () => {
  it.each([
    ['app.example.com', 'app.example.com', true],
    ['APP.example.com', 'app.example.com', true],
    ['app.example.com', 'evil-app.example.com', false],
    ['app.example.com', 'app.example.com.evil.net', false],
    ['*.example.com', 'a.example.com', true],
    ['*.example.com', 'a.b.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', '.example.com', false],
    ['*.example.com', 'evilexample.com', false],
  ])('%s vs %s -> %s', (pattern, host, expected) => {
    expect(hostMatcher(pattern)?.(host)).toBe(expected);
    expect(indexMatches({ prefix: '/', host: pattern }, { host })).toBe(expected);
  });
});

describe('route resolution in evaluate', () => {
  const policy = compile({
    resources: {
      orders: {},
      orders_write: {},
      admin: {},
      public: { identity: 'any' },
      items: {},
      tenant: {},
      ctx: {},
    },
    routes: [
      { prefix: '/api/orders', methods: ['POST', 'DELETE'], resource: 'orders_write' },
      { prefix: '/api/orders', resource: 'orders' },
      { prefix: '/admin', host: 'admin.example.com', resource: 'admin' },
      { path: '/public', resource: 'public' },
      { pattern: '/api/*/items', resource: 'items' },
      { pattern: '/t/**', host: '*.tenants.example.com', resource: 'tenant' },
    ],
  });
  const resourceOf = (req: Partial<NormalizedRequest>) => {
    const out = evaluate(policy, { req, identity: ALL });
    return out.reason === 'route_not_found' ? null : out.resource;
  };

  it.each([
    [{ path: '/api/orders' }, 'orders'],
    [{ path: '/api/orders/17', method: 'POST' }, 'orders_write'],
    [{ path: '/api/orders/17', method: 'DELETE' }, 'orders_write'],
    [{ path: '/api/orders/17', method: 'PUT' }, 'orders'],
    [{ path: '/api/ordersX' }, null],
    [{ path: '/admin', host: 'admin.example.com' }, 'admin'],
    [{ path: '/admin/users', host: 'admin.example.com' }, 'admin'],
    [{ path: '/admin', host: 'app.example.com' }, null],
    [{ path: '/public' }, 'public'],
    [{ path: '/public/x' }, null],
    [{ path: '/api/5/items' }, 'items'],
    [{ path: '/t/a/b', host: 'x.tenants.example.com' }, 'tenant'],
    [{ path: '/t/a/b', host: 'tenants.example.com' }, null],
    // What a normaliser produces from //admin, /api/../admin and /api/orders/%2e%2e/admin:
    [{ path: '/admin', host: 'admin.example.com' }, 'admin'],
    // Un-normalised strings never reach a broader resource than their canonical form would.
    [{ path: '/api/orders/../../admin', host: 'admin.example.com' }, null],
    [{ path: '/api/orders/..;/admin' }, null],
    [{ path: '//api/orders' }, null],
    [{ path: '/api/orders/%2e%2e/admin' }, null],
    [{ path: '/api/orders%2F..%2Fadmin' }, null],
    [{ path: '/api/orders?x=/admin' }, null],
    [{ path: 'api/orders' }, null],
    [{ path: '' }, null],
  ])('%j -> %s', (req, expected) => {
    expect(resourceOf(req)).toBe(expected);
  });

  it('context_extensions.resource wins over the route table', () => {
    expect(resourceOf({ path: '/api/orders', contextExtensions: { resource: 'ctx' } })).toBe('ctx');
  });

  it.each(['nope', '', 'constructor', '__proto__', 'toString'])(
    'context_extensions naming an unconfigured resource (%j) is route_not_found, never a fallback',
    (name) => {
      const out = evaluate(policy, { req: { path: '/api/orders', contextExtensions: { resource: name } }, identity: ALL });
      expect(out.reason).toBe('route_not_found');
      expect(out.resource).toBeUndefined();
    },
  );

  it('falls back to default_resource only for canonical paths', () => {
    const withDefault = compile({
      resources: { orders: {}, fallback: {} },
      routes: [{ prefix: '/api/orders', resource: 'orders' }],
      default_resource: 'fallback',
    });
    expect(evaluate(withDefault, { req: { path: '/elsewhere' }, identity: ALL }).resource).toBe('fallback');
    expect(evaluate(withDefault, { req: { path: '/x/../admin' }, identity: ALL }).reason).toBe('route_not_found');
  });

  it('without routes or default, every request is route_not_found', () => {
    const out = evaluate(compile({ resources: { a: {} } }), { identity: ALL });
    expect(out.reason).toBe('route_not_found');
    expect(out.detail).toBe('no route for GET app.example.com/');
  });
});
