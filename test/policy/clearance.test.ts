import { describe, expect, it } from 'vitest';
import { compile, evaluate, user } from './fixtures.js';

const LEVELS = ['public', 'internal', 'confidential', 'restricted'] as const;

const policy = compile({
  resources: Object.fromEntries(LEVELS.map((c) => [c, { classification: c }])),
  routes: LEVELS.map((c) => ({ prefix: `/${c}`, resource: c })),
});

describe('clearance: every (clearance, classification) pair', () => {
  const rows = LEVELS.flatMap((clearance, ci) =>
    LEVELS.map((classification, ki) => [clearance, classification, ci >= ki ? 'allowed' : 'clearance_insufficient'] as const),
  );
  it.each(rows)('clearance %s on a %s resource -> %s', (clearance, classification, reason) => {
    const out = evaluate(policy, {
      req: { path: `/${classification}` },
      identity: user({ allowed_resources: ['*'], clearance_level: clearance }),
    });
    expect(out.reason).toBe(reason);
    if (reason !== 'allowed') expect(out.detail).toBe(`clearance ${clearance} < ${classification}`);
  });
});

describe('missing or garbage clearance counts as public', () => {
  it.each([undefined, null, 3, 'Restricted', 'secret', ['restricted'], { level: 'restricted' }, 'constructor', ''])(
    '%j',
    (value) => {
      const claims = value === undefined ? { allowed_resources: ['*'] } : { allowed_resources: ['*'], clearance_level: value };
      expect(evaluate(policy, { req: { path: '/public' }, identity: user(claims) }).reason).toBe('allowed');
      expect(evaluate(policy, { req: { path: '/internal' }, identity: user(claims) }).reason).toBe('clearance_insufficient');
    },
  );

  it('reads the configured claim name', () => {
    const p = compile({ resources: { r: { classification: 'restricted' } }, routes: [{ prefix: '/', resource: 'r' }], clearance_claim: 'lvl' });
    expect(evaluate(p, { identity: user({ allowed_resources: ['r'], lvl: 'restricted' }) }).reason).toBe('allowed');
    expect(evaluate(p, { identity: user({ allowed_resources: ['r'], clearance_level: 'restricted' }) }).reason).toBe(
      'clearance_insufficient',
    );
  });
});
