import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema/index.js';
import { DecisionEngine } from '../../src/decision/engine.js';
import { createDecisionIds } from '../../src/decision/ids.js';
import { createAuthenticator } from '../../src/identity/index.js';
import type { Authenticator } from '../../src/identity/types.js';
import type { Decision, NormalizedRequest } from '../../src/model.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { compilePolicy } from '../../src/policy/index.js';
import { referenceCheckResponse } from '../helpers/reference-codecs.js';
import { RemediationScope } from '../../src/decision/remediation-scope.js';
import { compileCidrs } from '../../src/normalize/cidr.js';
import { createStateStore } from '../../src/state/index.js';
import { packageRoot } from '../../src/wire/protos.js';
import { runCli } from '../helpers/cli.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { IDP_SHAPES, jwksOf, makeKey, tokenFactory } from '../helpers/tokens.js';

const DIR = join(packageRoot(), 'deploy/examples/idp');
const EXAMPLES = ['auth0', 'entra', 'keycloak', 'okta'] as const;
/** 2030-03-13 (a Wednesday) 10:00 UTC. */
const NOW_S = Date.parse('2030-03-13T10:00:00Z') / 1000;
const key = makeKey('RS256', 'idp-test');

describe('deploy/examples/idp', () => {
  it('holds exactly the four examples', () => {
    expect(readdirSync(DIR).sort()).toEqual(EXAMPLES.map((e) => `${e}.yaml`));
  });

  it.each(EXAMPLES)('%s.yaml passes check-config', (name) => {
    const r = runCli(['check-config', join(DIR, `${name}.yaml`)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/OK \(policy hash [0-9a-f]{12}\)/);
  });

  it('check-config reports a CEL type error with the path of the expression', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'zt-idp-')), 'broken.yaml');
    const text = readFileSync(join(DIR, 'keycloak.yaml'), 'utf8');
    writeFileSync(file, text.replace(`'request.headers["x-tenant"] == claims.tenant'`, `'request.headers["x-tenant"] == 7 + "x"'`));
    const r = runCli(['check-config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/- policy\.resources\.orders\.when\.0: type error/);
  });
});

/** The example's config with its issuer's keys served by a local JWKS server (same issuer, same claims mapping). */
async function harness(name: (typeof EXAMPLES)[number], jwks: JwksServer) {
  const loaded = loadConfig({ file: join(DIR, `${name}.yaml`), env: {} });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const config: Config = loaded.config;
  const issuer = config.identity.issuers[0]!;
  const identity = { ...config.identity, issuers: [{ ...issuer, keys: { ...issuer.keys, discovery: undefined, jwks_uri: jwks.jwksUri } }] };
  const deps = { logger: silentLogger, metrics: createMetrics() };
  const authn: Authenticator = createAuthenticator(identity, deps);
  await authn.start();
  const state = createStateStore(config.state, deps);
  await state.start();
  const policy = compilePolicy(config.policy);
  const engine = new DecisionEngine({ authenticator: authn, state, policy, nextId: createDecisionIds(), remediation: new RemediationScope(compileCidrs([])) });
  const f = tokenFactory(issuer.issuer, issuer.audiences[0]!, () => NOW_S);
  const responder = { toCheckResponse: (d: Decision) => referenceCheckResponse(config.policy.headers, d) };
  const decide = async (claims: Record<string, unknown>, req: Partial<NormalizedRequest>, nowMs = NOW_S * 1000): Promise<Decision> => {
    const token = f.mint({ key, claims });
    return engine.decide(
      {
        method: 'GET',
        path: '/',
        rawPath: req.path ?? '/',
        query: '',
        host: 'shop.example.com',
        scheme: 'https',
        clientIp: '203.0.113.7',
        clientIpSource: 'peer',
        principal: '',
        contextExtensions: {},
        requestId: 'r',
        ...req,
        headers: { authorization: `Bearer ${token}`, ...req.headers },
      },
      nowMs,
    );
  };
  return { decide, responder, close: async () => (authn.close(), await state.close()) };
}

let jwks: JwksServer;
beforeAll(async () => {
  jwks = await startJwksServer({ jwks: jwksOf(key) });
});
afterAll(async () => {
  await jwks.close();
});

describe('Keycloak-shaped tokens', () => {
  let h: Awaited<ReturnType<typeof harness>>;
  beforeAll(async () => (h = await harness('keycloak', jwks)));
  afterAll(() => h.close());
  const kc = IDP_SHAPES.keycloak;
  const aud = { aud: ['shop-api', 'account'] };

  it('allows a read with the orders:read scope and the matching tenant header, and sends the claim headers', async () => {
    const d = await h.decide({ ...kc(), ...aud }, { path: '/api/orders/7', headers: { 'x-tenant': 'acme' } });
    expect(d).toMatchObject({ allow: true, reason: 'allowed', sub: kc().sub });
    expect(d.claimHeaders).toEqual([
      ['x-tenant-id', 'acme'],
      ['x-user-email', 'alice@shop.example.com'],
    ]);
  });

  it('denies another tenant with condition_failed and a missing tenant header with condition_error', async () => {
    expect((await h.decide({ ...kc(), ...aud }, { path: '/api/orders/7', headers: { 'x-tenant': 'globex' } })).reason).toBe('condition_failed');
    expect((await h.decide({ ...kc(), ...aud }, { path: '/api/orders/7' })).reason).toBe('condition_error');
  });

  it('DELETE needs the orders-admin client role (resource_access.shop-api.roles)', async () => {
    const headers = { 'x-tenant': 'acme' };
    expect((await h.decide({ ...kc(), ...aud }, { method: 'DELETE', path: '/api/orders/7', headers })).reason).toBe('allowed');
    const noRole = kc({ resource_access: { 'shop-api': { roles: [] } } });
    expect((await h.decide({ ...noRole, ...aud }, { method: 'DELETE', path: '/api/orders/7', headers })).reason).toBe('role_missing');
  });

  it('POST needs orders:write: scope_insufficient with the RFC 6750 challenge', async () => {
    const d = await h.decide({ ...kc(), ...aud }, { method: 'POST', path: '/api/orders', headers: { 'x-tenant': 'acme' } });
    expect(d.reason).toBe('scope_insufficient');
    expect(d.challenge).toBe('Bearer realm="zt-authz", error="insufficient_scope", error_description="scope_insufficient", scope="orders:write"');
    const ok = await h.decide({ ...kc({ scope: 'openid orders:read orders:write' }), ...aud }, { method: 'POST', path: '/api/orders', headers: { 'x-tenant': 'acme' } });
    expect(ok.reason).toBe('allowed');
  });
});

describe('Okta-shaped tokens', () => {
  let h: Awaited<ReturnType<typeof harness>>;
  beforeAll(async () => (h = await harness('okta', jwks)));
  afterAll(() => h.close());
  const okta = IDP_SHAPES.okta;

  it('uses uid as the user id and the scp array as scopes', async () => {
    expect(await h.decide(okta(), { path: '/api/orders' })).toMatchObject({ allow: true, sub: '00u1a2b3c4d5e6f7g8h9' });
    expect((await h.decide(okta({ scp: ['openid'] }), { path: '/api/orders' })).reason).toBe('scope_insufficient');
  });

  it('groups are roles; reports only in Berlin office hours on weekdays', async () => {
    expect((await h.decide(okta(), { path: '/api/reports/q1' })).reason).toBe('allowed');
    expect((await h.decide(okta({ groups: ['Everyone'] }), { path: '/api/reports/q1' })).reason).toBe('role_missing');
    // 21:30 in Berlin (UTC+1 in March), with a token issued then.
    const evening = Date.parse('2030-03-13T20:30:00Z') / 1000;
    const late = okta({ iat: evening - 10, exp: evening + 600 });
    expect((await h.decide(late, { path: '/api/reports/q1' }, evening * 1000)).reason).toBe('condition_failed');
  });

  it('a token without uid is invalid, not a user called undefined', async () => {
    expect((await h.decide(okta({ uid: undefined }), { path: '/api/orders' })).reason).toBe('token_invalid');
  });
});

describe('Auth0-shaped tokens', () => {
  let h: Awaited<ReturnType<typeof harness>>;
  beforeAll(async () => (h = await harness('auth0', jwks)));
  afterAll(() => h.close());
  const a0 = IDP_SHAPES.auth0;
  const aud = { aud: ['https://api.shop.example', 'https://shop.eu.auth0.com/userinfo'] };

  it('reads the namespaced roles claim and sends the namespaced org claim upstream', async () => {
    const d = await h.decide({ ...a0(), ...aud }, { path: '/api/orders' });
    expect(d.reason).toBe('allowed');
    expect(d.claimHeaders).toEqual([['x-org-id', 'org_7Hq2LmN4pR']]);
    expect((await h.decide({ ...a0(), ...aud }, { path: '/api/admin' })).reason).toBe('role_missing');
  });

  it('admin needs the role and an office address (ip_in)', async () => {
    const admin = a0({ 'https://shop.example/roles': ['admin'] });
    expect((await h.decide({ ...admin, ...aud }, { path: '/api/admin', clientIp: '10.2.3.4' })).reason).toBe('allowed');
    expect((await h.decide({ ...admin, ...aud }, { path: '/api/admin', clientIp: '203.0.113.7' })).reason).toBe('condition_failed');
  });

  it('route require and when add to the resource: write scope, and DELETE only for orders-admin', async () => {
    const writer = a0({ scope: 'openid read:orders write:orders' });
    expect((await h.decide({ ...writer, ...aud }, { method: 'PUT', path: '/api/orders/1' })).reason).toBe('allowed');
    expect((await h.decide({ ...a0(), ...aud }, { method: 'PUT', path: '/api/orders/1' })).reason).toBe('scope_insufficient');
    expect((await h.decide({ ...writer, ...aud }, { method: 'DELETE', path: '/api/orders/1' })).reason).toBe('condition_failed');
    const admin = a0({ scope: 'read:orders write:orders', 'https://shop.example/roles': ['orders-admin'] });
    expect((await h.decide({ ...admin, ...aud }, { method: 'DELETE', path: '/api/orders/1' })).reason).toBe('allowed');
  });
});

describe('Entra ID-shaped tokens', () => {
  let h: Awaited<ReturnType<typeof harness>>;
  beforeAll(async () => (h = await harness('entra', jwks)));
  afterAll(() => h.close());
  const en = IDP_SHAPES.entra;

  it('oid is the user, scp a space-separated string, roles the app roles', async () => {
    const d = await h.decide(en(), { path: '/api/orders' });
    expect(d).toMatchObject({ allow: true, sub: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0' });
    expect(d.claimHeaders).toEqual([['x-tenant-id', '72f988bf-86f1-41af-91ab-2d7cd011db47']]);
    // Writes need Orders.ReadWrite and the Orders.Writer app role.
    expect((await h.decide(en(), { method: 'POST', path: '/api/orders' })).reason).toBe('scope_insufficient');
    expect((await h.decide(en({ scp: 'Orders.ReadWrite' }), { method: 'POST', path: '/api/orders' })).reason).toBe('allowed');
    expect((await h.decide(en({ scp: 'Orders.ReadWrite', roles: [] }), { method: 'POST', path: '/api/orders' })).reason).toBe('role_missing');
  });

  it('a guest tenant fails the tid condition', async () => {
    expect((await h.decide(en({ tid: '00000000-0000-0000-0000-000000000001' }), { path: '/api/orders' })).reason).toBe('condition_failed');
  });

  it('a condition on a claim the token lacks is condition_error; the claim header overwrites a client copy', async () => {
    expect((await h.decide(en({ tid: undefined }), { path: '/api/orders' })).reason).toBe('condition_error');
    const ok = h.responder.toCheckResponse(await h.decide(en(), { path: '/api/orders', headers: { 'x-tenant-id': 'spoofed' } }));
    const header = ok.ok_response?.headers.find((x) => x.header.key === 'x-tenant-id');
    expect(header).toEqual({ header: { key: 'x-tenant-id', value: '72f988bf-86f1-41af-91ab-2d7cd011db47' }, append_action: 2 });
  });
});
