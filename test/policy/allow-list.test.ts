import { describe, expect, it } from 'vitest';
import { allowListGrants, entryMatches } from '../../src/policy/allow-list.js';
import { compile, evaluate, user } from './fixtures.js';

describe('entryMatches', () => {
  it.each([
    ['orders', 'orders', true],
    ['orders', 'orders/x', false],
    ['orders', 'Orders', false],
    ['orders', 'orders2', false],
    ['*', 'orders', true],
    ['*', 'orders/x/y', true],
    ['orders/*', 'orders/x', true],
    ['orders/*', 'orders/x/y', true],
    ['orders/*', 'orders', false],
    ['orders/*', 'orders/', false],
    ['orders/*', 'ordersX', false],
    ['orders/*', 'ordersX/y', false],
    ['orders/*', 'other/orders/x', false],
    ['orders*', 'orders', false],
    ['orders*', 'orders2', false],
    ['*/x', 'orders/x', false],
    ['/*', '/x', true],
    ['/*', 'x', false],
    ['', '', true],
    ['', 'orders', false],
    ['**', 'orders', false],
  ])('%j grants %j: %s', (entry, resource, expected) => {
    expect(entryMatches(entry, resource)).toBe(expected);
  });
});

describe('allowListGrants', () => {
  const HIGH = 2;
  const LOW = 0;
  it.each([
    ['names', ['profile', 'orders'], 'orders', 'GET', HIGH, true],
    ['no match', ['profile'], 'orders', 'GET', HIGH, false],
    ['empty', [], 'orders', 'GET', HIGH, false],
    ['not an array', 'orders', 'orders', 'GET', HIGH, false],
    ['space-separated string', 'profile orders', 'orders', 'GET', HIGH, false],
    ['object of names', { orders: true }, 'orders', 'GET', HIGH, false],
    ['missing', undefined, 'orders', 'GET', HIGH, false],
    ['null', null, 'orders', 'GET', HIGH, false],
    ['garbage entries skipped', [null, 1, ['orders'], { nam: 'orders' }, { name: 7 }, 'orders'], 'orders', 'GET', HIGH, true],
    ['only garbage', [null, 1, ['orders'], { nam: 'orders' }, { name: 7 }], 'orders', 'GET', HIGH, false],
    ['object entry', [{ name: 'orders', sensitivity: 'medium' }], 'orders', 'GET', HIGH, true],
    ['object entry without sensitivity', [{ name: 'orders' }], 'orders', 'GET', LOW, true],
    ['entry above cap is ignored', [{ name: 'orders', sensitivity: 'medium' }], 'orders', 'GET', LOW, false],
    ['entry at cap', [{ name: 'orders', sensitivity: 'low' }], 'orders', 'GET', LOW, true],
    ['unknown sensitivity ignored', [{ name: 'orders', sensitivity: 'none' }], 'orders', 'GET', HIGH, false],
    ['inherited sensitivity name ignored', [{ name: 'orders', sensitivity: 'constructor' }], 'orders', 'GET', HIGH, false],
    ['wildcard object', [{ name: 'orders/*', sensitivity: 'low' }], 'orders/refunds', 'GET', LOW, true],
    ['a later entry can grant', [{ name: 'orders', sensitivity: 'high' }, { name: 'orders', sensitivity: 'low' }], 'orders', 'GET', LOW, true],
    ['methods allow', [{ name: 'orders', methods: ['GET', 'HEAD'] }], 'orders', 'HEAD', HIGH, true],
    ['methods deny', [{ name: 'orders', methods: ['GET'] }], 'orders', 'POST', HIGH, false],
    ['methods are exact', [{ name: 'orders', methods: ['get'] }], 'orders', 'GET', HIGH, false],
    ['methods garbage', [{ name: 'orders', methods: 'GET' }], 'orders', 'GET', HIGH, false],
  ])('%s', (_label, claim, resource, method, cap, expected) => {
    expect(allowListGrants(claim, resource, method, cap)).toBe(expected);
  });

  it('ignores a name inherited from the prototype', () => {
    const entry = Object.create({ name: 'orders' }) as object;
    expect(allowListGrants([entry], 'orders', 'GET', HIGH)).toBe(false);
  });
});

describe('resource check in evaluate', () => {
  const policy = compile({
    resources: { 'orders/refunds': {}, orders: {} },
    routes: [
      { prefix: '/orders/refunds', resource: 'orders/refunds' },
      { prefix: '/orders', resource: 'orders' },
    ],
    allowed_resources_claim: 'grants',
  });
  it.each([
    [['orders/*'], '/orders/refunds', 'allowed'],
    [['orders/*'], '/orders', 'resource_not_allowed'],
    [['orders'], '/orders/refunds', 'resource_not_allowed'],
    [['*'], '/orders', 'allowed'],
    [undefined, '/orders', 'resource_not_allowed'],
  ])('grants %j on %s -> %s', (grants, path, reason) => {
    const identity = user(grants === undefined ? {} : { grants });
    expect(evaluate(policy, { req: { path }, identity }).reason).toBe(reason);
  });

  it('reads the configured claim, not allowed_resources', () => {
    expect(evaluate(policy, { req: { path: '/orders' }, identity: user({ allowed_resources: ['*'] }) }).reason).toBe(
      'resource_not_allowed',
    );
  });
});
