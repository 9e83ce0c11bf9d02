import { describe, expect, it } from 'vitest';
import { policySchema } from '../../src/config/schema/policy.js';

const issues = (input: unknown) =>
  policySchema.safeParse(input).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];

describe('policy schema', () => {
  it('has the guides\' defaults', () => {
    const p = policySchema.parse(undefined);
    expect(p.risk).toMatchObject({ claim: ['risk_score'], default_score: 0, mfa_above: 0.3, device_above: 0.5, deny_above: 0.8 });
    expect(p.risk.sensitivity_caps).toEqual([
      { above: 0.4, max: 'medium' },
      { above: 0.7, max: 'low' },
    ]);
    expect(p.risk.mfa).toEqual({ amr: ['mfa', 'otp', 'hwk'], acr: [] });
    expect(p.shadow).toBe(false);
    expect(p.allowed_resources_claim).toEqual(['allowed_resources']);
    expect(p.clearance_claim).toEqual(['clearance_level']);
  });

  it.each([
    [{ routes: [{ resource: 'a' }] }, 'routes.0: a route needs exactly one of prefix, path, pattern'],
    [{ resources: { a: {} }, routes: [{ prefix: '/a', path: '/a', resource: 'a' }] }, 'routes.0: a route needs exactly one of prefix, path, pattern'],
    [{ resources: { a: {} }, routes: [{ prefix: '/a', resource: 'b' }] }, 'routes.0.resource: unknown resource "b"'],
    [{ default_resource: 'x' }, 'default_resource: unknown resource "x"'],
    [{ resources: { a: {} }, routes: [{ prefix: '/a//b', resource: 'a' }] }, 'routes.0.prefix: must be a normalised path: no //, /./, /../, backslash, ?, # or %'],
    [{ resources: { a: {} }, routes: [{ path: '/a/../b', resource: 'a' }] }, 'routes.0.path: must be a normalised path: no //, /./, /../, backslash, ?, # or %'],
    [{ resources: { a: {} }, routes: [{ pattern: '/a/v*/b', resource: 'a' }] }, 'routes.0.pattern: `*` must be a whole segment and `**` only the last segment'],
    [{ resources: { a: {} }, routes: [{ pattern: '/a/**/b', resource: 'a' }] }, 'routes.0.pattern: `*` must be a whole segment and `**` only the last segment'],
    [{ resources: { a: {} }, routes: [{ prefix: '/a', host: 'a.example.com:8080', resource: 'a' }] }, 'routes.0.host: expected host or *.suffix, without port'],
    [{ resources: { a: {} }, routes: [{ prefix: '/a', host: 'a.*.com', resource: 'a' }] }, 'routes.0.host: expected host or *.suffix, without port'],
    [{ resources: { a: {} }, routes: [{ prefix: '/a', methods: ['get'], resource: 'a' }] }, 'routes.0.methods.0: Invalid string: must match pattern /^[A-Z]+$/'],
    [{ time_window: { timezone: 'Mars/Olympus' } }, 'time_window.timezone: unknown IANA time zone'],
    [{ time_window: { start: '24:00' } }, 'time_window.start: expected HH:MM (24 h)'],
    [{ time_window: { days: [] } }, 'time_window.days: Too small: expected array to have >=1 items'],
    [
      { risk: { sensitivity_caps: [{ above: 0.4, max: 'low' }, { above: 0.7, max: 'medium' }] } },
      'risk.sensitivity_caps: a higher `above` must not allow a higher sensitivity',
    ],
    [{ risk: { mfa: { acr: ['two words'] } } }, 'risk.mfa.acr.0: acr values are sent in acr_values: no spaces, quotes or backslashes'],
    [{ risk: { mfa: { acr: ['a"b'] } } }, 'risk.mfa.acr.0: acr values are sent in acr_values: no spaces, quotes or backslashes'],
    [{ service_pairs: [{ from: 'spiffe://td/ns/web-*/sa/x', to: 'a' }] }, 'service_pairs.0.from: expected spiffe://TD/ns/NS/sa/SA (`*` as a whole segment) or a bare service-account name'],
    [{ service_pairs: [{ from: 'spiffe://td//sa/x', to: 'a' }] }, 'service_pairs.0.from: expected spiffe://TD/ns/NS/sa/SA (`*` as a whole segment) or a bare service-account name'],
    [{ service_pairs: [{ from: 'ns/web', to: 'a' }] }, 'service_pairs.0.from: expected spiffe://TD/ns/NS/sa/SA (`*` as a whole segment) or a bare service-account name'],
    [{ service_pairs: [{ from: '*', to: 'a' }] }, 'service_pairs.0.from: expected spiffe://TD/ns/NS/sa/SA (`*` as a whole segment) or a bare service-account name'],
    [{ shadow_checks: ['route'] }, 'shadow_checks.0: Invalid option: expected one of "state"|"risk"|"time_window"|"resource"|"clearance"|"service_pair"|"require"|"condition"'],
    [{ resources: { a: { sensitivty: 'low' } } }, 'resources.a: Unrecognized key: "sensitivty"'],
  ])('rejects %j', (input, message) => {
    expect(issues(input)).toContain(message);
  });

  it('accepts the documented forms', () => {
    expect(
      issues({
        resources: { a: {}, b: { identity: 'workload', service: 'b-svc', time_window: { timezone: 'Europe/Berlin', start: '22:00', end: '05:59' } } },
        routes: [
          { prefix: '/', resource: 'a' },
          { path: '/exact', methods: ['GET', 'HEAD'], resource: 'a' },
          { pattern: '/t/*/x/**', host: '*.example.com', resource: 'b' },
        ],
        default_resource: 'a',
        service_pairs: [
          { from: 'spiffe://cluster.local/ns/*/sa/web', to: 'b-svc' },
          { from: 'spiffe://*/ns/prod/sa/*', to: 'a' },
          { from: 'monitoring', to: 'a' },
        ],
        risk: { mfa: { acr: ['urn:mace:incommon:iap:silver'], max_age_s: 300 }, device: { header: 'x-device-verified' } },
      }),
    ).toEqual([]);
  });
});
