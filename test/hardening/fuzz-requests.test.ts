import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_AUDIENCE, DEV_ISSUER } from '../../src/dev/keys.js';
import type { WireCheckRequest } from '../../src/wire/check-request.js';
import { loadProtos } from '../../src/wire/protos.js';
import { checkRequest } from '../helpers/grpc.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { b64url } from '../helpers/tokens.js';
import { FUZZ_TIMEOUT_MS, demoWith, expectStillServing, fuzzRuns, goodDevToken, goodRequest, isAllow, isDecision, watchUnhandled } from './support.js';

/**
 * Property-based fuzzing of Check over the real gRPC socket, against the embedded demo config
 * (bundled dev keys; no resource there is open to anonymous callers without a workload identity).
 * Properties: no crash or unhandled rejection, no OK unless the request is a known-valid one, and a
 * decision for every call before its deadline.
 */
let srv: TestServer;
let good: string;
let unhandled: ReturnType<typeof watchUnhandled>;
const DEADLINE_MS = 2000;
const MAX_MESSAGE = 4 * 1024 * 1024;
const RESOURCE_EXHAUSTED = 8;
const wireSize = (req: WireCheckRequest) => loadProtos().authorization.Check!.requestSerialize(req).length;

beforeAll(async () => {
  unhandled = watchUnhandled();
  srv = await startTestServer(demoWith());
  good = await goodDevToken();
});
afterAll(async () => {
  unhandled.stop();
  await srv.stop();
});

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Strings that break naive parsers: odd Unicode, controls, separators, encodings. */
const nasty = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', ' ', '\u0000', '\r\n', '\u202e', '\ufeff', '\ud800', '%00', '%2e%2e', '..', '//', '\\', ';', ',', 'Bearer', '\u0130', 'ß', '\u212a'),
  fc.string({ maxLength: 30 }),
);

/** Huge values now and then: 64 KiB to 1 MiB in one header. */
const huge = fc.integer({ min: 64 * 1024, max: 1024 * 1024 }).chain((n) => fc.constantFrom('a', 'é', '𝕏', ',', '\u0000').map((c) => c.repeat(Math.ceil(n / c.length))));

const headerName = fc.oneof(
  fc.constantFrom(':path', ':authority', ':method', 'authorization', 'Authorization', 'x-forwarded-for', 'x-real-ip', 'x-user-id', 'host', 'cookie', 'x-envoy-original-path', 'x-original-uri', 'x-request-id'),
  fc.stringMatching(/^[a-z0-9-]{1,20}$/),
  nasty,
);
const headerValue = fc.oneof({ weight: 8, arbitrary: nasty }, { weight: 1, arbitrary: huge });
const headerMap = fc.dictionary(headerName, headerValue, { maxKeys: 12 });

const oddPath = fc.oneof(
  fc.constantFrom(
    '/api/orders/../admin', '//admin', '/api/orders/%2e%2e/admin', '/API/ORDERS', '/api/orders%2f..%2fadmin', '/admin;/', '/api/orders?x=1#f',
    '/api/orders/\u0000', '\\admin', '', '*', 'http://evil/admin', '/api/./orders', '/%', '/%zz', '/api/orders/%c0%ae%c0%ae/admin',
  ),
  fc.string({ unit: 'binary', maxLength: 60 }).map((s) => '/' + s),
  fc.webPath(),
  fc.integer({ min: 8 * 1024, max: 256 * 1024 }).map((n) => '/api/orders/' + 'a/'.repeat(n >> 1)),
);

/** A valid token, corrupted so that it must never verify. */
const mutatedToken = (token: string) =>
  fc.oneof(
    fc.tuple(fc.nat(token.length - 1), fc.constantFrom(...B64URL)).map(([i, c]) =>
      token[i] === c || token[i] === '.' ? token.slice(0, i) + (c === 'A' ? 'B' : 'A') + token.slice(i + 1) : token.slice(0, i) + c + token.slice(i + 1),
    ),
    fc.nat(token.length - 2).map((n) => token.slice(0, n + 1)),
    fc.constantFrom(token + '.', token + '=', token + 'A', token.split('.').reverse().join('.'), token.toUpperCase(), ` ${token}`, `${token},${token}`),
    fc.nat(token.length - 1).map((i) => token.slice(0, i) + ' ' + token.slice(i)),
  );

/** Tokens shaped like JWTs, signed by nobody the server trusts. */
const jwtShaped = fc
  .record({
    header: fc.record(
      {
        alg: fc.oneof(fc.constantFrom('none', 'None', 'RS256', 'ES256', 'HS256', 'PS256', 'EdDSA', ''), fc.string()),
        kid: fc.oneof(fc.constantFrom('dev-rs256-1', 'dev-es256-1'), fc.string(), fc.integer()),
        typ: fc.constantFrom('JWT', 'at+jwt'),
        jku: fc.webUrl(),
        crit: fc.array(fc.string(), { maxLength: 2 }),
      },
      { requiredKeys: ['alg'] },
    ),
    payload: fc.record(
      {
        iss: fc.oneof(fc.constant(DEV_ISSUER), fc.string()),
        aud: fc.oneof(fc.constant(DEV_AUDIENCE), fc.array(fc.string()), fc.constant([])),
        sub: fc.string(),
        exp: fc.oneof(fc.integer(), fc.constant(1e308), fc.string(), fc.constant(Math.floor(Date.now() / 1000) + 600)),
        allowed_resources: fc.constant(['orders', 'admin', 'payments']),
        clearance_level: fc.constantFrom('restricted', 'internal'),
      },
      { requiredKeys: [] },
    ),
    sig: fc.uint8Array({ maxLength: 300 }),
  })
  .map(({ header, payload, sig }) => `${b64url(header)}.${b64url(payload)}.${b64url(Buffer.from(sig))}`);

const badToken = fc.oneof(
  fc.constant(undefined),
  nasty,
  jwtShaped,
  fc.constant(null).chain(() => mutatedToken(good)),
);

/** Every random request comes from some address other than the known-good one. */
const sourceIp = fc.oneof(fc.ipV4().filter((ip) => ip !== '10.200.0.1'), fc.ipV6(), nasty);
const method = fc.oneof(fc.constantFrom('GET', 'POST', 'DELETE', 'get', 'CONNECT', ''), nasty);
const principal = fc.oneof(fc.constant(undefined), fc.constantFrom('spiffe://cluster.local/ns/prod/sa/orders', 'spiffe://evil/ns/x/sa/web/..'), nasty);

/** Remove random parts of the message: Envoy versions and misconfigurations leave fields out. */
function dropFields(req: WireCheckRequest, drops: number[]): WireCheckRequest {
  const r = structuredClone(req) as Record<string, any>;
  const paths: ((x: Record<string, any>) => void)[] = [
    (x) => delete x.attributes,
    (x) => delete x.attributes?.request,
    (x) => delete x.attributes?.request?.http,
    (x) => delete x.attributes?.request?.http?.headers,
    (x) => delete x.attributes?.request?.http?.path,
    (x) => delete x.attributes?.request?.http?.method,
    (x) => delete x.attributes?.request?.http?.host,
    (x) => delete x.attributes?.source,
    (x) => delete x.attributes?.source?.address,
    (x) => delete x.attributes?.destination,
    (x) => delete x.attributes?.request?.time,
    (x) => x.attributes?.request?.http?.headers && delete x.attributes.request.http.headers[':path'],
    (x) => x.attributes?.request?.http?.headers && delete x.attributes.request.http.headers.authorization,
  ];
  for (const d of drops) paths[d % paths.length]!(r);
  return r as WireCheckRequest;
}

const randomRequest = fc
  .record({
    method,
    path: oddPath,
    host: fc.oneof(fc.constant('orders.prod.svc.cluster.local'), nasty, fc.domain()),
    headers: headerMap,
    token: badToken,
    sourceIp,
    principal,
    contextExtensions: fc.option(fc.dictionary(nasty, nasty, { maxKeys: 4 }), { nil: undefined }),
    drops: fc.array(fc.nat(), { maxLength: 4 }),
    // The same path in :path and in http.path, or two different ones.
    rawHeaderPath: fc.option(oddPath, { nil: undefined }),
  })
  .map(({ drops, rawHeaderPath, token, ...spec }) => {
    const headers = { ...spec.headers };
    // A random header map may contain `authorization` too: it never holds the good token.
    if (headers.authorization?.includes(good)) delete headers.authorization;
    const req = checkRequest({ ...spec, headers, ...(typeof token === 'string' ? { token } : {}) });
    if (rawHeaderPath !== undefined && req.attributes?.request?.http?.headers) req.attributes.request.http.headers[':path'] = rawHeaderPath;
    return dropFields(req, drops);
  });

describe('fuzzing CheckRequests over the real gRPC socket', () => {
  it('random and mutated requests without a valid token never get OK, and always get a decision before the deadline', async () => {
    await fc.assert(
      fc.asyncProperty(randomRequest, async (req) => {
        const r = await srv.client.check(req, { deadlineMs: DEADLINE_MS });
        expect(isAllow(r)).toBe(false);
        if (wireSize(req) > MAX_MESSAGE) expect(r.rpcCode).toBe(RESOURCE_EXHAUSTED);
        else expect(isDecision(r), JSON.stringify(r).slice(0, 300)).toBe(true);
      }),
      { numRuns: fuzzRuns(250) },
    );
    await expectStillServing(srv.client, good);
    expect(unhandled.reasons).toEqual([]);
  }, FUZZ_TIMEOUT_MS);

  it('random tokens on an otherwise valid request never get OK', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(badToken, async (token) => {
        // Its own source address: auto-remediation would otherwise block the known-good one.
        const req = checkRequest({ path: '/api/orders', sourceIp: `10.66.${(n >> 8) & 255}.${n++ & 255}` });
        const headers = req.attributes!.request!.http!.headers!;
        if (typeof token === 'string') headers.authorization = `Bearer ${token}`;
        else delete headers.authorization;
        const r = await srv.client.check(req, { deadlineMs: DEADLINE_MS });
        expect(isDecision(r)).toBe(true);
        expect(isAllow(r)).toBe(false);
      }),
      { numRuns: fuzzRuns(250) },
    );
    await expectStillServing(srv.client, good);
    expect(unhandled.reasons).toEqual([]);
  }, FUZZ_TIMEOUT_MS);

  it('noise in unrelated headers of the known-valid request still gets a decision (OK only with the valid token)', async () => {
    const noise = fc.dictionary(
      fc.stringMatching(/^x-[a-z0-9-]{1,16}$/).filter((k) => k !== 'x-forwarded-for' && k !== 'x-real-ip'),
      headerValue,
      { maxKeys: 8 },
    );
    let allowed = 0;
    await fc.assert(
      fc.asyncProperty(noise, async (extra) => {
        const req = goodRequest(good);
        Object.assign(req.attributes!.request!.http!.headers!, extra);
        const r = await srv.client.check(req, { deadlineMs: DEADLINE_MS });
        if (wireSize(req) > MAX_MESSAGE) {
          expect(r.rpcCode).toBe(RESOURCE_EXHAUSTED);
          return;
        }
        // Unrelated headers do not change the decision about a valid request.
        expect(isAllow(r), JSON.stringify(r.response?.status ?? r.rpcDetails)).toBe(true);
        allowed++;
      }),
      { numRuns: fuzzRuns(100) },
    );
    expect(allowed).toBeGreaterThan(0);
    expect(unhandled.reasons).toEqual([]);
  }, FUZZ_TIMEOUT_MS);
});
