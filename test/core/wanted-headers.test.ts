import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema/index.js';
import { DEMO_CONFIG } from '../../src/config/defaults.js';
import type { WireCheckRequest } from '../../src/wire/check-request.js';
import { normalizeCheckRequest } from '../../src/normalize/request.js';
import { WantedHeaders, wantedHeaderNames } from '../../src/wire/wanted-headers.js';
import { decodeCheckRequest } from '../../src/wire/decode.js';
import { fuzzRuns } from '../hardening/support.js';
import { checkRequestObject, encodeCheckRequest as encode } from '../helpers/check-request-gen.js';

/**
 * The server decodes only the request headers some check reads (src/wire/wanted-headers.ts)
 * and folds the pseudo-headers that duplicate HttpRequest fields into those fields. Whatever a
 * check can see must be the same as with every header decoded.
 */
const keys = { jwks_uri: 'https://idp.example/jwks' };
const CONFIGS = {
  demo: configSchema.parse(DEMO_CONFIG),
  custom: configSchema.parse({
    identity: {
      issuers: [
        { issuer: 'https://a.example', audiences: ['x'], keys, token_header: 'x-token', token_scheme: '' },
        // A token header that is also a folded pseudo-header fallback must stay a header.
        { issuer: 'https://b.example', audiences: ['x'], keys, token_header: 'host' },
      ],
    },
    policy: {
      risk: { device: { header: 'X-Device-OK' } },
      // `when` conditions read request headers with literal keys only: these are kept too.
      resources: { a: { when: 'request.headers["x-tenant"] == "t" || "x-flag" in request.headers' } },
      routes: [{ prefix: '/', resource: 'a', when: 'has(request.headers.xroute) || true' }],
    },
  }),
};

/** What the checks read: the normalised request, and the headers they look up by name. */
function view(msg: WireCheckRequest, readByChecks: readonly string[], hops: number): unknown {
  try {
    const n = normalizeCheckRequest(msg, { trustedXffHops: hops });
    const { headers, ...rest } = n;
    return { ...rest, contextExtensions: { ...n.contextExtensions }, headers: readByChecks.map((h) => [h, Object.hasOwn(headers, h) ? headers[h] : undefined]) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

const entry = (k: string, v: string) => ld(3, ld(1, k), ld(2, v));
function ld(field: number, ...parts: (Buffer | string)[]): Buffer {
  const body = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
  const len: number[] = [];
  for (let n = body.length; ; n >>>= 7) {
    if (n < 128) {
      len.push(n);
      break;
    }
    len.push((n & 127) | 128);
  }
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...len]), body]);
}
/** CheckRequest{attributes{request{http{...parts}}}} by hand, for orders protobufjs never writes. */
const httpRequest = (...parts: Buffer[]) => ld(1, ld(4, ld(2, ...parts)));

describe('wanted headers', () => {
  it('are the headers normalisation falls back to, the issuers\u2019 token headers and the device header', () => {
    const traceHeaders = ['b3', 'traceparent', 'x-b3-sampled', 'x-b3-spanid', 'x-b3-traceid'];
    expect(wantedHeaderNames(CONFIGS.demo).sort()).toEqual([':authority', ':method', ':path', ':scheme', 'authorization', ...traceHeaders, 'host', 'x-forwarded-for', 'x-request-id'].sort());
    // Trace headers are kept only while a decision line or a span carries the trace id.
    expect(wantedHeaderNames({ ...CONFIGS.demo, log: { ...CONFIGS.demo.log, decisions: 'none' } })).not.toContain('traceparent');
    expect(wantedHeaderNames({ ...CONFIGS.demo, log: { ...CONFIGS.demo.log, trace_ids: false } })).not.toContain('b3');
    expect(wantedHeaderNames(CONFIGS.custom)).toEqual(expect.arrayContaining(['x-token', 'host', 'x-device-ok', 'x-forwarded-for', 'x-tenant', 'x-flag', 'xroute']));
    expect(wantedHeaderNames(CONFIGS.custom)).not.toContain('authorization');
  });

  const readByChecks = { demo: ['authorization', 'x-forwarded-for'], custom: ['x-token', 'host', 'x-device-ok', 'x-forwarded-for', 'x-tenant', 'x-flag', 'xroute'] };
  for (const name of ['demo', 'custom'] as const) {
    it(`(${name} config) leave the checks the same request as decoding every header, on generated requests`, () => {
      const wanted = WantedHeaders.of(CONFIGS[name]);
      fc.assert(
        fc.property(checkRequestObject, (obj) => {
          const bytes = encode(obj);
          for (const hops of [0, 1]) expect(view(decodeCheckRequest(bytes, wanted), readByChecks[name], hops)).toEqual(view(decodeCheckRequest(bytes), readByChecks[name], hops));
        }),
        { numRuns: fuzzRuns(500) },
      );
    });
  }

  it('drop every other header without making a property of its name', () => {
    const wanted = WantedHeaders.of(CONFIGS.demo);
    const bytes = httpRequest(ld(2, 'GET'), entry('__proto__', 'x'), entry('constructor', 'y'), entry('user-agent', 'curl'), entry('authorization', 'Bearer t'), ld(4, '/p'));
    const h = decodeCheckRequest(bytes, wanted).attributes?.request?.http?.headers ?? {};
    expect(Object.keys(h)).toEqual(['authorization']);
    expect(h.authorization).toBe('Bearer t');
    expect(h.constructor).toBeUndefined();
    expect(Object.hasOwn(h, '__proto__')).toBe(false);
  });

  it('fold :path, :authority, :method, :scheme and x-request-id into empty fields only', () => {
    const wanted = WantedHeaders.of(CONFIGS.demo);
    const pseudo = [entry(':path', '/from-header'), entry(':authority', 'a.example:80'), entry(':method', 'POST'), entry(':scheme', 'https'), entry('x-request-id', 'hdr-id')];
    const empty = decodeCheckRequest(httpRequest(...pseudo), wanted).attributes?.request?.http;
    expect([empty?.path, empty?.host, empty?.method, empty?.scheme, empty?.id]).toEqual(['/from-header', 'a.example:80', 'POST', 'https', 'hdr-id']);
    expect(Object.keys(empty?.headers ?? {})).toEqual([]);
    const fields = decodeCheckRequest(httpRequest(ld(1, 'field-id'), ld(2, 'GET'), ...pseudo, ld(4, '/field'), ld(5, 'f.example'), ld(6, 'http')), wanted).attributes?.request?.http;
    expect([fields?.path, fields?.host, fields?.method, fields?.scheme, fields?.id]).toEqual(['/field', 'f.example', 'GET', 'http', 'field-id']);
    // host is the fallback after :authority, as in normalizeCheckRequest.
    expect(decodeCheckRequest(httpRequest(entry('host', 'h.example')), wanted).attributes?.request?.http?.host).toBe('h.example');
  });

  it('read entries whose value comes before the key, and let the last key of an entry decide', () => {
    const wanted = WantedHeaders.of(CONFIGS.demo);
    const valueFirst = ld(3, ld(2, 'Bearer v'), ld(1, 'authorization'));
    const twoKeys = ld(3, ld(1, 'authorization'), ld(2, 'Bearer w'), ld(1, 'x-other'));
    expect(decodeCheckRequest(httpRequest(valueFirst), wanted).attributes?.request?.http?.headers?.authorization).toBe('Bearer v');
    expect(decodeCheckRequest(httpRequest(twoKeys), wanted).attributes?.request?.http?.headers?.authorization).toBeUndefined();
    expect(decodeCheckRequest(httpRequest(twoKeys)).attributes?.request?.http?.headers?.authorization).toBeUndefined();
  });

  it('keep a token header named like a folded pseudo-header as a header', () => {
    const wanted = WantedHeaders.of(CONFIGS.custom);
    const h = decodeCheckRequest(httpRequest(ld(5, 'field.example'), entry('host', 'tok')), wanted).attributes?.request?.http;
    expect(h?.headers?.host).toBe('tok');
    expect(h?.host).toBe('field.example');
  });
});
