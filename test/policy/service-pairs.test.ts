import { describe, expect, it } from 'vitest';
import { compileFrom } from '../../src/policy/service-pairs.js';
import { compile, evaluate, user } from './fixtures.js';

describe('compileFrom', () => {
  it.each([
    ['spiffe://cluster.local/ns/prod/sa/web', 'spiffe://cluster.local/ns/prod/sa/web', true],
    ['spiffe://cluster.local/ns/prod/sa/web', 'spiffe://cluster.local/ns/prod/sa/web2', false],
    ['spiffe://cluster.local/ns/prod/sa/web', 'spiffe://cluster.local/ns/prod/sa/we', false],
    ['spiffe://cluster.local/ns/prod/sa/web', 'spiffe://cluster.local/ns/prod/sa/web/', false],
    ['spiffe://cluster.local/ns/prod/sa/web', 'spiffe://cluster.local/ns/prod/sa/web/x', false],
    ['spiffe://cluster.local/ns/prod/sa/web', 'spiffe://other.local/ns/prod/sa/web', false],
    ['spiffe://cluster.local/ns/prod/sa/web', 'SPIFFE://cluster.local/ns/prod/sa/web', false],
    ['spiffe://cluster.local/ns/*/sa/web', 'spiffe://cluster.local/ns/staging/sa/web', true],
    ['spiffe://cluster.local/ns/*/sa/web', 'spiffe://cluster.local/ns//sa/web', false],
    ['spiffe://cluster.local/ns/*/sa/web', 'spiffe://cluster.local/ns/a/b/sa/web', false],
    ['spiffe://cluster.local/ns/*/sa/web', 'spiffe://cluster.local/ns/prod/sa/api', false],
    ['spiffe://cluster.local/ns/prod/sa/*', 'spiffe://cluster.local/ns/prod/sa/anything', true],
    ['spiffe://cluster.local/ns/prod/sa/*', 'spiffe://cluster.local/ns/prod/sa', false],
    ['spiffe://*/ns/prod/sa/web', 'spiffe://any.td/ns/prod/sa/web', true],
    ['web', 'spiffe://cluster.local/ns/prod/sa/web', true],
    ['web', 'spiffe://other.td/ns/dev/sa/web', true],
    ['web', 'spiffe://cluster.local/ns/web/sa/api', false],
    ['web', 'spiffe://cluster.local/ns/prod/sa/web/extra', false],
    ['web', 'spiffe://cluster.local/web', false],
    ['web', 'web', false],
    ['web', 'spiffe://cluster.local/ns/prod/sa/webx', false],
    ['web', 'spiffe://cluster.local/ns/prod/svc/web', false],
    ['web', '', false],
  ])('%s vs %s -> %s', (from, principal, expected) => {
    expect(compileFrom(from)(principal)).toBe(expected);
  });
});

const WEB_PRINCIPAL = 'spiffe://cluster.local/ns/prod/sa/web';

describe('service pairs in evaluate', () => {
  const policy = compile({
    resources: {
      api: { identity: 'any' },
      database: { identity: 'workload' },
      orders: { identity: 'any', service: 'orders-svc' },
      open: { identity: 'any' },
    },
    routes: [
      { prefix: '/api', resource: 'api' },
      { prefix: '/db', resource: 'database' },
      { prefix: '/orders', resource: 'orders' },
      { prefix: '/open', resource: 'open' },
    ],
    service_pairs: [
      { from: 'spiffe://cluster.local/ns/*/sa/web', to: 'api' },
      { from: 'spiffe://cluster.local/ns/*/sa/monitoring', to: 'api' },
      { from: 'api', to: 'database' },
      { from: 'web', to: 'orders-svc' },
    ],
  });
  const principal = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

  it.each([
    ['/api', principal('prod', 'web'), 'allowed'],
    ['/api', principal('ops', 'monitoring'), 'allowed'],
    ['/api', principal('prod', 'database'), 'service_pair_not_allowed'],
    ['/db', principal('prod', 'api'), 'allowed'],
    ['/db', principal('prod', 'web'), 'service_pair_not_allowed'],
    ['/db', 'spiffe://evil.example/ns/prod/sa/api', 'allowed'], // a bare name trusts every trust domain the mesh accepts
    ['/orders', principal('prod', 'web'), 'allowed'], // pairs name the resource's service, not the resource
    ['/open', principal('prod', 'web'), 'service_pair_not_allowed'],
    ['/api', 'not-a-spiffe-id', 'service_pair_not_allowed'],
  ])('%s from %s -> %s', (path, p, reason) => {
    expect(evaluate(policy, { req: { path, principal: p }, identity: null }).reason).toBe(reason);
  });

  it('applies to requests that carry both a user token and a principal', () => {
    const identity = user({ allowed_resources: ['*'] });
    expect(evaluate(policy, { req: { path: '/api', principal: principal('prod', 'web') }, identity }).reason).toBe('allowed');
    expect(evaluate(policy, { req: { path: '/api', principal: principal('prod', 'db') }, identity }).reason).toBe(
      'service_pair_not_allowed',
    );
  });

  it('`to: *` lets a caller reach every service (the user checks still apply)', () => {
    const gateway = 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account';
    const p = compile({
      resources: { a: { identity: 'any' }, b: { identity: 'any', service: 'b-svc' } },
      routes: [
        { prefix: '/a', resource: 'a' },
        { prefix: '/b', resource: 'b' },
      ],
      service_pairs: [{ from: 'istio-ingressgateway-service-account', to: '*' }],
    });
    expect(p.warnings).toEqual([]);
    expect(evaluate(p, { req: { path: '/a', principal: gateway }, identity: null }).reason).toBe('allowed');
    expect(evaluate(p, { req: { path: '/b', principal: gateway }, identity: null }).reason).toBe('allowed');
    expect(evaluate(p, { req: { path: '/b', principal: gateway }, identity: user({}) }).reason).toBe('resource_not_allowed');
    expect(evaluate(p, { req: { path: '/b', principal: WEB_PRINCIPAL }, identity: null }).reason).toBe('service_pair_not_allowed');
  });

  it('is skipped for a user request without a principal', () => {
    expect(evaluate(policy, { req: { path: '/open' }, identity: user({ allowed_resources: ['*'] }) }).reason).toBe('allowed');
  });
});
