import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema/index.js';
import type { WireCheckResponse } from '../../src/response/envoy.js';
import { checkRequest, type RequestSpec } from '../helpers/grpc.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { jwksOf, makeKey, tokenFactory } from '../helpers/tokens.js';

/**
 * Without credentials the policy cannot be mapped: an unknown path answers exactly what a known,
 * protected one does (401 token_missing with the same challenge), over a real gRPC call.
 */
const AUD = 'orders-api';
const key = makeKey('RS256', 'k1');
let jwks: JwksServer;
let srv: TestServer;

function config(): ConfigInput {
  return {
    identity: { issuers: [{ issuer: jwks.issuer, audiences: [AUD], keys: { jwks_uri: jwks.jwksUri } }] },
    policy: {
      resources: {
        orders: { sensitivity: 'low', classification: 'public' },
        internal: { sensitivity: 'low', classification: 'public', identity: 'workload' },
      },
      routes: [
        { prefix: '/api/orders', resource: 'orders' },
        { prefix: '/internal', resource: 'internal' },
      ],
    },
    state: { remediation: { enabled: false } },
  };
}

/** What the client of the protected service sees: status, body without the decision id, headers. */
function visible(res: WireCheckResponse | undefined) {
  const d = res?.denied_response;
  const headers = Object.fromEntries((d?.headers ?? []).map((h) => [h.header.key, h.header.value]).filter(([k]) => k !== 'x-auth-decision-id'));
  const body = JSON.parse(d?.body ?? '{}') as Record<string, unknown>;
  delete body.decision_id;
  return { grpc: res?.status.code, message: res?.status.message, http: d?.status?.code, headers, body };
}

async function check(spec: RequestSpec) {
  const r = await srv.client.check(checkRequest(spec));
  expect(r.rpcCode).toBe(0);
  return visible(r.response);
}

beforeAll(async () => {
  jwks = await startJwksServer({ jwks: jwksOf(key) });
  srv = await startTestServer(config());
});
afterAll(async () => {
  await srv?.stop();
  await jwks?.close();
});

describe('route enumeration without a token', () => {
  it('an unknown path answers the same 401 challenge as a known protected one', async () => {
    const known = await check({ path: '/api/orders/7' });
    expect(known).toMatchObject({ grpc: 16, message: 'token_missing', http: 401 });
    expect(known.headers['www-authenticate']).toBe('Bearer realm="zt-authz"');
    for (const path of ['/nowhere', '/admin/users', '/api/orders/../../etc', '/%2e%2e/x']) {
      expect(await check({ path }), path).toEqual(known);
    }
  });

  it('callers with credentials still learn route_not_found', async () => {
    const token = tokenFactory(jwks.issuer, AUD).mint({ key, claims: { allowed_resources: ['orders'] } });
    expect(await check({ path: '/nowhere', token })).toMatchObject({ grpc: 7, message: 'route_not_found', http: 403 });
    const principal = 'spiffe://cluster.local/ns/prod/sa/web';
    expect(await check({ path: '/nowhere', principal })).toMatchObject({ grpc: 7, message: 'route_not_found' });
  });

  it('a resource for workloads only keeps its own answer (documented exception)', async () => {
    expect(await check({ path: '/internal/x' })).toMatchObject({ message: 'workload_identity_required', http: 403 });
  });
});
