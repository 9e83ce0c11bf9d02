import { request } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema/index.js';
import { normalizeAuthSubrequest } from '../../src/normalize/auth-subrequest.js';
import { compileCidrs } from '../../src/normalize/cidr.js';
import { normalizeCheckRequest } from '../../src/normalize/request.js';
import { REASON_HEADER } from '../../src/response/deny-body.js';
import { fuzzRuns } from '../hardening/support.js';
import { checkRequest } from '../helpers/grpc.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { jwksOf, makeKey, tokenFactory } from '../helpers/tokens.js';

/**
 * gRPC and HTTP mode normalise a request the same way (normalizeRequest): a route keyed on a host
 * matches `App.Example.com.` in both, over a real socket each, and on generated hosts, paths and
 * IPs the two normalisations agree.
 */
const AUD = 'orders-api';
const key = makeKey('RS256', 'k1');
let jwks: JwksServer;
let srv: TestServer;
let token: string;

beforeAll(async () => {
  jwks = await startJwksServer({ jwks: jwksOf(key) });
  const config: ConfigInput = {
    identity: { issuers: [{ issuer: jwks.issuer, audiences: [AUD], keys: { jwks_uri: jwks.jwksUri } }] },
    state: { backend: 'memory' },
    policy: {
      resources: { orders: { sensitivity: 'low', classification: 'public' } },
      routes: [{ prefix: '/api', host: 'app.example.com', resource: 'orders' }],
    },
  };
  srv = await startTestServer(config);
  token = tokenFactory(jwks.issuer, AUD).mint({ key, claims: { allowed_resources: ['orders'] } });
});
afterAll(async () => {
  await srv?.stop();
  await jwks?.close();
});

async function viaGrpc(host: string): Promise<string> {
  const r = await srv.client.check(checkRequest({ token, host, path: '/api/orders' }));
  expect(r.rpcCode).toBe(0);
  return r.response!.status.code === 0 ? 'allowed' : r.response!.status.message;
}

/** A real HTTP request to the HTTP authz port; from 127.0.0.1, a trusted proxy by default. */
function viaHttp(headers: Record<string, string>, path = '/authz/api/orders'): Promise<string> {
  const { hostname, port } = new URL(srv.httpUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, headers: { authorization: `Bearer ${token}`, ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? 'allowed' : String(res.headers[REASON_HEADER])));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a host-keyed route in both modes', () => {
  it.each(['app.example.com', 'App.Example.com.', 'APP.EXAMPLE.COM:8443', 'app.example.com.:80'])('%s matches it over gRPC and HTTP', async (host) => {
    expect(await viaGrpc(host)).toBe('allowed');
    expect(await viaHttp({ host })).toBe('allowed');
    expect(await viaHttp({ host: 'sidecar.local', 'x-forwarded-host': host, 'x-original-uri': '/api/orders' }, '/authz')).toBe('allowed');
  });

  it.each(['other.example.com', 'app.example.com..', 'app.example.co'])('%s does not, in either mode', async (host) => {
    expect(await viaGrpc(host)).toBe('route_not_found');
    expect(await viaHttp({ host })).toBe('route_not_found');
  });
});

describe('gRPC and HTTP normalisation agree', () => {
  const trusted = compileCidrs(['127.0.0.1/32']);
  const anyCase = (s: string) => fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }).map((up) => [...s].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(''));
  const host = fc
    .tuple(fc.domain(), fc.boolean(), fc.option(fc.integer({ min: 1, max: 65535 })))
    .chain(([d, dot, port]) => anyCase(d).map((h) => `${h}${dot ? '.' : ''}${port === null ? '' : `:${port}`}`));
  const segment = fc.oneof(fc.constantFrom('..', '.', '', '%2e%2E', '%2F', 'a%20b', '%zz', 'A', '\\'), fc.webSegment());
  const path = fc
    .tuple(fc.array(segment, { maxLength: 6 }), fc.option(fc.webQueryParameters()))
    .map(([segs, q]) => `/${segs.join('/')}${q === null ? '' : `?${q}`}`);
  const ip = fc.oneof(
    fc.ipV4(),
    fc.ipV6(),
    fc.ipV4().map((v4) => `::ffff:${v4}`),
    fc.ipV6().map((v6) => v6.toUpperCase()),
  );
  const method = fc.constantFrom('GET', 'post', 'Delete', 'OPTIONS');

  const outcome = (f: () => unknown) => {
    try {
      const n = f() as Record<string, unknown>;
      return { ok: true, view: { method: n.method, path: n.path, rawPath: n.rawPath, query: n.query, host: n.host, clientIp: n.clientIp } };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  };

  it('on generated hosts, paths, methods and client IPs', () => {
    fc.assert(
      fc.property(host, path, ip, method, (h, p, a, m) => {
        const grpc = outcome(() => normalizeCheckRequest(checkRequest({ host: h, path: p, method: m, sourceIp: a }), { trustedXffHops: 0 }));
        const http = outcome(() =>
          normalizeAuthSubrequest(
            { method: 'GET', target: '/', peer: '127.0.0.1', headers: { host: 'sidecar.local', 'x-forwarded-host': h, 'x-original-uri': p, 'x-original-method': m, 'x-real-ip': a } },
            trusted,
          ),
        );
        expect(http).toEqual(grpc);
      }),
      { numRuns: fuzzRuns(500) },
    );
  });
});
