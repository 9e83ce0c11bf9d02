import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { routeSchema } from '../../src/config/schema/policy.js';
import { RouteIndex } from '../../src/policy/route-index.js';
import { isCanonicalPath, type RouteSpec } from '../../src/policy/routes.js';
import { request } from './fixtures.js';
import { linearMatcher } from './linear-routes.js';

// Few distinct segments, hosts and methods so generated routes overlap, shadow and tie often.
const literal = fc.constantFrom('a', 'b', 'api', 'v1', '*', 'a;b', 'x.y');
const patternSeg = fc.constantFrom('a', 'b', 'api', '*', '*');
const joined = (segs: string[], slash: boolean) => `/${segs.join('/')}${slash && segs.length > 0 ? '/' : ''}`;
const hosts = fc.constantFrom(undefined, 'a.com', 'b.a.com', '*.a.com', '*.com', 'A.COM', '*.b.a.com');
const methods = fc.option(fc.subarray(['GET', 'POST', 'PUT'], { minLength: 1 }), { nil: undefined });

const route: fc.Arbitrary<RouteSpec & { id: number }> = fc
  .tuple(
    fc.oneof(
      fc.record({ path: fc.tuple(fc.array(literal, { maxLength: 4 }), fc.boolean()).map(([s, t]) => joined(s, t)) }),
      fc.record({ prefix: fc.tuple(fc.array(literal, { maxLength: 4 }), fc.boolean()).map(([s, t]) => joined(s, t)) }),
      fc.record({
        pattern: fc
          .tuple(fc.array(patternSeg, { maxLength: 4 }), fc.boolean(), fc.boolean())
          .map(([s, tail, slash]) => (tail ? `${joined(s, false)}${s.length ? '/' : ''}**` : joined(s, slash))),
      }),
    ),
    hosts,
    methods,
  )
  .map(([shape, host, m]) => ({ ...shape, host, methods: m, id: 0 }));

const table = fc.array(route, { maxLength: 40 }).map((routes) => routes.map((r, id) => ({ ...r, id })));

// Request paths mix the route alphabet with what a normaliser must have removed: '', '.', '..',
// escapes, '?', '#', backslash, so non-canonical paths come up often.
const reqSeg = fc.constantFrom('a', 'b', 'api', 'v1', '*', 'a;b', 'x.y', 'c', '', '.', '..', '..;', '%2e', 'a?b', 'a#', 'a\\b', 'ab');
const reqPath = fc.oneof(
  fc.tuple(fc.array(reqSeg, { maxLength: 6 }), fc.boolean()).map(([s, t]) => joined(s, t)),
  fc.constantFrom('', 'a', '//', '/a//b', '/./a', '/a/..'),
);
const reqHost = fc.constantFrom('a.com', 'b.a.com', 'x.b.a.com', 'y.x.b.a.com', 'com', '.a.com', 'A.COM', 'c.com', 'a.com.evil', 'evila.com');
const reqMethod = fc.constantFrom('GET', 'POST', 'DELETE');

describe('RouteIndex', () => {
  it('every generated route is one the config schema accepts', () => {
    fc.assert(
      fc.property(route, (r) => {
        const { id: _id, ...spec } = r;
        expect(routeSchema.safeParse({ ...spec, resource: 'x' }).success).toBe(true);
      }),
    );
  });

  it('answers what the linear first-match scan answers, route object included (property)', () => {
    fc.assert(
      fc.property(table, fc.array(fc.tuple(reqPath, reqHost, reqMethod), { minLength: 1, maxLength: 20 }), (routes, reqs) => {
        const index = new RouteIndex(routes);
        const linear = linearMatcher(routes);
        for (const [path, host, method] of reqs) {
          const req = request({ path, host, method });
          const got = index.match(req);
          expect(got).toBe(linear(req));
          if (!isCanonicalPath(path)) expect(got).toBeUndefined();
        }
      }),
      { numRuns: Number(process.env['FUZZ_RUNS'] ?? 1500) },
    );
  });

  it('finds the first route in config order when later routes are more specific', () => {
    const routes = [
      { prefix: '/api', methods: ['POST'], id: 0 },
      { pattern: '/api/*/items', host: '*.example.com', id: 1 },
      { path: '/api/7/items', host: 'a.example.com', id: 2 },
      { prefix: '/', id: 3 },
    ];
    const index = new RouteIndex(routes);
    const idOf = (path: string, host: string, method = 'GET') => index.match(request({ path, host, method }))?.id;
    expect(idOf('/api/7/items', 'a.example.com')).toBe(1);
    expect(idOf('/api/7/items', 'a.example.com', 'POST')).toBe(0);
    expect(idOf('/api/7/items', 'example.com')).toBe(3);
    expect(idOf('/api/7/items/x', 'a.example.com')).toBe(3);
    expect(idOf('/api/../admin', 'a.example.com')).toBeUndefined();
  });

  it('returns the route object itself, so fields it does not read pass through', () => {
    const extra = { prefix: '/x', require: { claim: 'role' }, when: 'request.method == "GET"' };
    expect(new RouteIndex([extra]).match(request({ path: '/x/1' }))).toBe(extra);
  });

  it('stays consistent with the linear scan on a 10,000-route table', () => {
    const routes: (RouteSpec & { id: number })[] = [];
    for (let i = 0; i < 10_000; i++) {
      const kind = i % 3;
      const host = i % 5 === 0 ? `h${i % 50}.example.com` : i % 5 === 1 ? `*.t${i % 20}.example.com` : undefined;
      const m = i % 4 === 0 ? ['GET'] : i % 4 === 1 ? ['POST', 'PUT'] : undefined;
      const base = `/svc${i % 400}/r${i}`;
      routes.push({ ...(kind === 0 ? { prefix: base } : kind === 1 ? { path: `${base}/x` } : { pattern: `${base}/*/items` }), host, methods: m, id: i });
    }
    const index = new RouteIndex(routes);
    const linear = linearMatcher(routes);
    for (let i = 0; i < 2000; i++) {
      const r = (i * 7919) % 10_000;
      const req = request({
        path: [`/svc${r % 400}/r${r}`, `/svc${r % 400}/r${r}/x`, `/svc${r % 400}/r${r}/5/items`, `/svc${r % 400}/r${r}x`][i % 4]!,
        host: [`h${r % 50}.example.com`, `a.t${r % 20}.example.com`, 'other.example.com'][i % 3]!,
        method: ['GET', 'POST', 'DELETE'][i % 3]!,
      });
      expect(index.match(req)).toBe(linear(req));
    }
  });
});
