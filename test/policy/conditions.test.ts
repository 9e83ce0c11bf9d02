import { describe, expect, it } from 'vitest';
import type { CheckTrace } from '../../src/model.js';
import { MAX_COST } from '../../src/policy/cel.js';
import { compile, evaluate, type PolicyInputConfig, user, WEDNESDAY_NOON } from './fixtures.js';

/** Roles and scopes are resolved by the authenticator; policy tests set them on the identity. */
const caller = (roles: string[] = [], scopes: string[] = [], claims: Record<string, unknown> = {}) => ({ ...user(claims), roles, scopes });

const PAIRS = [{ from: 'spiffe://cluster.local/ns/a/sa/b', to: 'orders' }];

const base = (resource: Record<string, unknown>, routes: Record<string, unknown>[] = []): PolicyInputConfig => ({
  allowed_resources_claim: null,
  resources: { orders: resource },
  routes: [...routes, { prefix: '/api/orders', resource: 'orders' }] as NonNullable<PolicyInputConfig>['routes'],
});

describe('when: CEL conditions', () => {
  const tenant = compile(base({ when: 'request.headers["x-tenant"] == claims.tenant' }));

  it('true allows, false denies condition_failed with the expression path in the detail', () => {
    const req = { path: '/api/orders', headers: { 'x-tenant': 'acme' } };
    expect(evaluate(tenant, { req, identity: caller([], [], { tenant: 'acme' }) }).reason).toBe('allowed');
    const out = evaluate(tenant, { req, identity: caller([], [], { tenant: 'globex' }) });
    expect(out).toMatchObject({ reason: 'condition_failed', detail: 'policy.resources.orders.when.0: request.headers["x-tenant"] == claims.tenant is false' });
  });

  it('an evaluation error (missing header or claim) denies condition_error, never allows', () => {
    expect(evaluate(tenant, { req: { path: '/api/orders' }, identity: caller([], [], { tenant: 'acme' }) }).reason).toBe('condition_error');
    expect(evaluate(tenant, { req: { path: '/api/orders', headers: { 'x-tenant': 'acme' } }, identity: caller() }).reason).toBe('condition_error');
    // Negating an erroring expression does not turn it into an allow.
    const negated = compile(base({ when: '!(request.headers["x-tenant"] == claims.tenant)' }));
    expect(evaluate(negated, { req: { path: '/api/orders' }, identity: caller() }).reason).toBe('condition_error');
  });

  it('a dyn result that is not a bool is condition_error', () => {
    const p = compile(base({ when: 'claims.flag' }));
    expect(evaluate(p, { req: { path: '/api/orders' }, identity: caller([], [], { flag: 'yes' }) }).reason).toBe('condition_error');
    expect(evaluate(p, { req: { path: '/api/orders' }, identity: caller([], [], { flag: true }) }).reason).toBe('allowed');
  });

  it('a list must all hold; a route adds its conditions after its resource', () => {
    const p = compile(
      base({ when: ['request.method != "TRACE"', 'claims.tier == "gold"'] }, [
        { prefix: '/api/orders/bulk', resource: 'orders', when: 'identity.roles.exists(r, r == "bulk")' },
      ]),
    );
    const gold = caller(['bulk'], [], { tier: 'gold' });
    expect(evaluate(p, { req: { path: '/api/orders/bulk' }, identity: gold }).reason).toBe('allowed');
    expect(evaluate(p, { req: { path: '/api/orders/bulk' }, identity: caller([], [], { tier: 'gold' }) })).toMatchObject({
      reason: 'condition_failed',
      detail: 'policy.routes.0.when.0: identity.roles.exists(r, r == "bulk") is false',
    });
    expect(evaluate(p, { req: { path: '/api/orders/bulk', method: 'TRACE' }, identity: gold }).detail).toBe(
      'policy.resources.orders.when.0: request.method != "TRACE" is false',
    );
    // The resource's conditions apply on its other routes, the route's do not.
    expect(evaluate(p, { req: { path: '/api/orders/1' }, identity: caller([], [], { tier: 'gold' }) }).reason).toBe('allowed');
  });

  it('sees request, claims, identity, principal, resource and now', () => {
    const p = compile(
      base({
        identity: 'any',
        when: [
          'request.path.startsWith("/api/") && request.host == "app.example.com" && request.ip == "10.0.0.1"',
          'identity.sub == "alice" && identity.issuer == "https://issuer.test" && "orders:read" in identity.scopes',
          'resource.name == "orders" && resource.sensitivity == "low" && resource.classification == "public"',
          'principal == "" || principal.startsWith("spiffe://cluster.local/")',
          'now.getHours("UTC") == 12 && now.getDayOfWeek("UTC") == 3',
          'claims.sub == identity.sub',
        ],
      }),
    );
    expect(evaluate(p, { req: { path: '/api/orders' }, identity: caller([], ['orders:read']) }).reason).toBe('allowed');
    expect(evaluate(p, { req: { path: '/api/orders' }, identity: caller([], ['orders:read']), nowMs: WEDNESDAY_NOON + 3_600_000 }).reason).toBe(
      'condition_failed',
    );
  });

  it('without a token claims is empty and identity blank', () => {
    const p = compile({ ...base({ identity: 'any', when: 'identity.sub == "" && size(claims) == 0 && size(identity.roles) == 0' }), service_pairs: PAIRS });
    expect(evaluate(p, { req: { path: '/api/orders', principal: 'spiffe://cluster.local/ns/a/sa/b' }, identity: null }).reason).toBe('allowed');
  });

  it('ip_in: CIDR of request.ip, IPv4 and IPv6, IPv4-mapped as IPv4; an unknown ip is an error', () => {
    const p = compile(base({ when: 'ip_in(request.ip, "10.0.0.0/8") || ip_in(request.ip, "2001:db8::/32")' }));
    const at = (clientIp: string) => evaluate(p, { req: { path: '/api/orders', clientIp }, identity: caller() }).reason;
    expect(at('10.200.3.4')).toBe('allowed');
    expect(at('2001:db8:1::5')).toBe('allowed');
    expect(at('11.0.0.1')).toBe('condition_failed');
    expect(at('')).toBe('condition_error');
  });

  it('local_hour, local_minutes and local_weekday agree with CEL getHours/getMinutes/getDayOfWeek, across a DST change', () => {
    const p = compile(
      base({
        when:
          'local_hour(now, "Europe/Berlin") == now.getHours("Europe/Berlin") && local_weekday(now, "Europe/Berlin") == now.getDayOfWeek("Europe/Berlin") && local_minutes(now, "Europe/Berlin") == 60 * now.getHours("Europe/Berlin") + now.getMinutes("Europe/Berlin")',
      }),
    );
    // Around the 2030-03-31 spring-forward (01:00 UTC) and a Sunday-to-Monday midnight.
    for (const iso of ['2030-03-31T00:59:00Z', '2030-03-31T01:00:00Z', '2030-03-17T23:30:00Z', '2030-10-27T00:30:00Z', '2030-10-27T01:30:00Z']) {
      expect(evaluate(p, { req: { path: '/api/orders' }, identity: caller(), nowMs: Date.parse(iso) }).reason, iso).toBe('allowed');
    }
    const office = compile(base({ when: 'local_minutes(now, "Europe/Berlin") >= 510 && local_weekday(now, "Europe/Berlin") == 3' }));
    expect(evaluate(office, { req: { path: '/api/orders' }, identity: caller(), nowMs: Date.parse('2026-03-04T07:30:00Z') }).reason).toBe('allowed');
    expect(evaluate(office, { req: { path: '/api/orders' }, identity: caller(), nowMs: Date.parse('2026-03-04T07:29:00Z') }).reason).toBe('condition_failed');
  });

  it.each([
    ['unknown time zone', 'local_hour(now, "Mars/Olympus") > 1', /unknown IANA time zone/],
    ['syntax', 'request.method ==', /^policy\.resources\.orders\.when\.0: syntax error/],
    ['unknown variable', 'user.name == "x"', /^policy\.resources\.orders\.when\.0: type error/],
    ['unknown field', 'request.verb == "GET"', /^policy\.resources\.orders\.when\.0: type error/],
    ['type', 'request.method + 1 == 2', /^policy\.resources\.orders\.when\.0: type error/],
    ['not a bool', 'request.method', /^policy\.resources\.orders\.when\.0: must be a bool, is string/],
    ['regex', 'request.path.matches("^/a+$")', /matches\(\) is not available/],
    ['computed header key', 'request.headers[claims.h] == "x"', /literal key/],
    ['header map iterated', 'request.headers.exists(k, k == "x")', /literal key/],
    ['upper-case header', 'request.headers["X-Tenant"] == "a"', /lower-case/],
    ['nested comprehension', 'identity.roles.exists(a, identity.roles.exists(b, a == b + "x"))', new RegExp(`exceeds ${MAX_COST}`)],
    ['bad CIDR literal', 'ip_in(request.ip, "10.0.0.0/33")', /is not a CIDR/],
  ])('refuses at compile time: %s', (_label, expr, message) => {
    expect(() => compile(base({ when: expr }))).toThrow(message);
  });

  it('names the route in the error path', () => {
    expect(() => compile(base({}, [{ prefix: '/x', resource: 'orders', when: ['true', 'nope('] }]))).toThrow(/^policy\.routes\.0\.when\.1: syntax error/);
  });
});

describe('require: roles and scopes', () => {
  it('roles_any, roles_all, scopes_any, scopes_all', () => {
    const p = compile(base({ require: { roles_any: ['a', 'b'], roles_all: ['c'], scopes_any: ['s1', 's2'], scopes_all: ['s3'] } }));
    const at = (roles: string[], scopes: string[]) => evaluate(p, { req: { path: '/api/orders' }, identity: caller(roles, scopes) });
    expect(at(['b', 'c'], ['s2', 's3']).reason).toBe('allowed');
    expect(at(['c'], ['s2', 's3'])).toMatchObject({ reason: 'role_missing', detail: 'one of the roles a, b required (roles_any)' });
    expect(at(['a'], ['s2', 's3'])).toMatchObject({ reason: 'role_missing', detail: 'role c required (roles_all)' });
    expect(at(['a', 'c'], ['s3'])).toMatchObject({
      reason: 'scope_insufficient',
      challenge: 'Bearer realm="zt-authz", error="insufficient_scope", error_description="scope_insufficient", scope="s1 s2"',
    });
    expect(at(['a', 'c'], ['s1'])).toMatchObject({
      reason: 'scope_insufficient',
      challenge: 'Bearer realm="zt-authz", error="insufficient_scope", error_description="scope_insufficient", scope="s3"',
    });
  });

  it('a route requirement adds to its resource requirement', () => {
    const p = compile(
      base({ require: { scopes_any: ['orders:read'] } }, [{ prefix: '/api/orders', methods: ['DELETE'], resource: 'orders', require: { roles_any: ['orders-admin'] } }]),
    );
    const del = { path: '/api/orders/1', method: 'DELETE' };
    expect(evaluate(p, { req: del, identity: caller(['orders-admin'], ['orders:read']) }).reason).toBe('allowed');
    expect(evaluate(p, { req: del, identity: caller(['orders-admin'], []) }).reason).toBe('scope_insufficient');
    expect(evaluate(p, { req: del, identity: caller([], ['orders:read']) }).reason).toBe('role_missing');
    expect(evaluate(p, { req: { path: '/api/orders/1' }, identity: caller([], ['orders:read']) }).reason).toBe('allowed');
  });

  it('also applies through context_extensions and default_resource (the resource requirement)', () => {
    const p = compile({ ...base({ require: { roles_all: ['x'] } }), default_resource: 'orders' });
    expect(evaluate(p, { req: { path: '/elsewhere' }, identity: caller() }).reason).toBe('role_missing');
    expect(evaluate(p, { req: { path: '/z', contextExtensions: { resource: 'orders' } }, identity: caller(['x']) }).reason).toBe('allowed');
  });

  it('a caller without a token has no roles', () => {
    const p = compile({ ...base({ identity: 'any', require: { roles_any: ['x'] } }), service_pairs: PAIRS });
    expect(evaluate(p, { req: { path: '/api/orders', principal: 'spiffe://cluster.local/ns/a/sa/b' }, identity: null }).reason).toBe('role_missing');
  });
});

describe('the check table: shadow mode and explain cover require and condition', () => {
  const cfg = base({ require: { roles_all: ['admin'] }, when: 'request.method == "POST"' });

  it('shadowed, both are recorded in order and the request allowed', () => {
    const p = compile({ ...cfg, shadow_checks: ['require', 'condition'] });
    const trace: CheckTrace[] = [];
    const out = evaluate(p, { req: { path: '/api/orders' }, identity: caller(), trace });
    expect(out).toMatchObject({ reason: 'allowed', shadowed: ['role_missing', 'condition_failed'] });
    expect(trace.filter((t) => t.verdict === 'shadow_deny').map((t) => `${t.check}:${t.reason}`)).toEqual(['require:role_missing', 'condition:condition_failed']);
    // A shadowed scope deny carries no challenge.
    const scopes = compile({ ...base({ require: { scopes_all: ['w'] } }), shadow: true });
    expect(evaluate(scopes, { req: { path: '/api/orders' }, identity: caller() }).challenge).toBeUndefined();
  });

  it('explain traces every check, the allow list skipped when its claim is null', () => {
    const p = compile(cfg);
    const trace: CheckTrace[] = [];
    evaluate(p, { req: { path: '/api/orders', method: 'POST' }, identity: caller(['admin']), trace });
    expect(trace.map((t) => `${t.check}:${t.verdict}${t.detail ? `(${t.detail})` : ''}`)).toEqual([
      'route:pass(resource orders)',
      'identity_requirement:pass(user)',
      'state:pass(no live risk)',
      'risk:pass(risk 0)',
      'time_window:skip(no time window)',
      'resource:skip(allowed_resources_claim is null)',
      'clearance:pass',
      'service_pair:skip(no workload principal)',
      'require:pass',
      'condition:pass(1 true)',
    ]);
  });
});

describe('claim paths', () => {
  it('nested and segment-list paths for risk, device, clearance and the allow list', () => {
    const p = compile({
      risk: { claim: 'ext.risk.score', device: { claim: ['https://idp.example/device', 'managed'] } },
      clearance_claim: ['org', 'clearance'],
      allowed_resources_claim: 'authz.resources',
      resources: { orders: { classification: 'internal' } },
      routes: [{ prefix: '/api/orders', resource: 'orders' }],
    });
    const claims = {
      ext: { risk: { score: 0.6 } },
      'https://idp.example/device': { managed: true },
      org: { clearance: 'internal' },
      authz: { resources: ['orders'] },
      amr: ['mfa'],
    };
    const at = (c: Record<string, unknown>) => evaluate(p, { req: { path: '/api/orders' }, identity: user(c) });
    expect(at(claims)).toMatchObject({ reason: 'allowed', riskScore: 0.6 });
    expect(at({ ...claims, 'https://idp.example/device': { managed: false } }).reason).toBe('device_verification_required');
    expect(at({ ...claims, org: { clearance: 'public' } }).reason).toBe('clearance_insufficient');
    expect(at({ ...claims, authz: { resources: [] } })).toMatchObject({ reason: 'resource_not_allowed', detail: expect.stringMatching(/^authz\.resources does not grant/) });
    // A nested claim that is missing takes the default score.
    expect(at({ ...claims, ext: {} }).riskScore).toBe(0);
  });
});

describe('policy.headers.claims', () => {
  const p = compile({
    ...base({}),
    headers: { claims: { 'x-tenant': 'tenant', 'x-level': 'org.level', 'x-admin': 'admin', 'x-groups': 'groups', 'x-evil': 'evil', 'x-big': 'big' } },
  });

  it('strings, numbers and booleans are sent; objects, arrays, CR/LF and oversized values are not', () => {
    const out = evaluate(p, {
      req: { path: '/api/orders' },
      identity: caller([], [], { tenant: 'acme', org: { level: 3 }, admin: false, groups: ['a'], evil: 'x\r\nx-user-id: root', big: 'b'.repeat(5000) }),
    });
    expect(out.claimHeaders).toEqual([
      ['x-tenant', 'acme'],
      ['x-level', '3'],
      ['x-admin', 'false'],
    ]);
  });

  it('are resolved once per verified identity, not per check', () => {
    const id = caller([], [], { tenant: 'acme' });
    const a = evaluate(p, { req: { path: '/api/orders' }, identity: id }).claimHeaders;
    expect(evaluate(p, { req: { path: '/api/orders' }, identity: id }).claimHeaders).toBe(a);
  });

  it('refuses a claim header that would overwrite one zt-authz sets', () => {
    expect(() => compile({ headers: { claims: { 'x-user-id': 'sub' } } })).toThrow(/x-user-id is set by zt-authz/);
  });
});
