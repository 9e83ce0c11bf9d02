import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UNDECODABLE_REQUEST, type WireCheckRequest } from '../../src/wire/check-request.js';
import { normalizeCheckRequest } from '../../src/normalize/request.js';
import { decodeCheckRequest, WireDecodeError } from '../../src/wire/decode.js';
import { fuzzRuns } from '../hardening/support.js';
import { checkRequestObject, encodeCheckRequest as encode } from '../helpers/check-request-gen.js';
import { protobufjsDecodeCheckRequest } from '../helpers/reference-codecs.js';

/**
 * The server's selective CheckRequest decoder against protobufjs (the decoder it replaced, still
 * what the bench's baseline uses), on requests encoded with Envoy's official protos: what the
 * checks see after normalisation must be the same, and malformed bytes must throw, never decode
 * to something else.
 */
const protobufjsDecode = (b: Buffer): WireCheckRequest => {
  try {
    return protobufjsDecodeCheckRequest(b);
  } catch {
    return UNDECODABLE_REQUEST;
  }
};

type Outcome = { ok: true; value: unknown } | { ok: false; error: string };

function normalized(msg: WireCheckRequest, hops: number): Outcome {
  try {
    const n = normalizeCheckRequest(msg, { trustedXffHops: hops });
    // Compare as plain data: the two decoders give maps different prototypes.
    return { ok: true, value: JSON.parse(JSON.stringify(n)) };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

function sameView(bytes: Buffer): void {
  const mine = decodeCheckRequest(bytes);
  const theirs = protobufjsDecode(bytes);
  expect(theirs).not.toBe(UNDECODABLE_REQUEST);
  for (const hops of [0, 1]) expect(normalized(mine, hops)).toEqual(normalized(theirs, hops));
}

describe('selective CheckRequest decoder', () => {
  it('gives the checks the same request as protobufjs for requests encoded with the official protos', () => {
    fc.assert(fc.property(checkRequestObject, (obj) => sameView(encode(obj))), { numRuns: fuzzRuns(500) });
  });

  it('on mutated bytes either throws or agrees with protobufjs, and throws wherever protobufjs does', () => {
    const mutated = fc.tuple(checkRequestObject, fc.array(fc.tuple(fc.nat(), fc.nat(255), fc.constantFrom('set', 'insert', 'delete', 'truncate')), { minLength: 1, maxLength: 4 })).map(([obj, edits]) => {
      const bytes = [...encode(obj)];
      for (const [at, v, op] of edits) {
        if (bytes.length === 0) break;
        const i = at % bytes.length;
        if (op === 'set') bytes[i] = v;
        else if (op === 'insert') bytes.splice(i, 0, v);
        else if (op === 'delete') bytes.splice(i, 1);
        else bytes.length = i;
      }
      return Buffer.from(bytes);
    });
    let agreed = 0;
    fc.assert(
      fc.property(mutated, (bytes) => {
        let mine: WireCheckRequest;
        try {
          mine = decodeCheckRequest(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(WireDecodeError);
          return;
        }
        const theirs = protobufjsDecode(bytes);
        // What protobufjs rejects is rejected here too, garbage in fields nothing reads
        // (destination, time) included: skipped message fields are walked, not just stepped over.
        expect(theirs, `decoded here, rejected by protobufjs: ${bytes.toString('hex')}`).not.toBe(UNDECODABLE_REQUEST);
        agreed++;
        for (const hops of [0, 1]) expect(normalized(mine, hops)).toEqual(normalized(theirs, hops));
      }),
      { numRuns: fuzzRuns(1000) },
    );
    expect(agreed).toBeGreaterThan(0);
  });

  it('decodes the fields the checks read, and skips unknown fields of every wire type', () => {
    const bytes = encode({
      attributes: {
        source: { address: { socket_address: { address: '10.1.2.3', port_value: 5 } }, principal: 'spiffe://a' },
        request: { http: { id: 'r1', method: 'GET', path: '/p?q', host: 'h', scheme: 'https', query: 'x', headers: { authorization: 'Bearer t' }, header_map: { headers: [{ key: 'k', raw_value: Buffer.from([0xff]) }] } } },
        context_extensions: { a: 'b' },
      },
    });
    // Unknown fields at the top level: varint (field 20), fixed64 (21), fixed32 (22), a group (23).
    const extra = Buffer.from([0xa0, 0x01, 0x96, 0x01, 0xa9, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0xb5, 0x01, 1, 2, 3, 4, 0xbb, 0x01, 0x08, 0x01, 0xbc, 0x01]);
    const msg = decodeCheckRequest(Buffer.concat([extra, bytes]));
    expect(msg.attributes?.source?.address?.socket_address?.address).toBe('10.1.2.3');
    expect(msg.attributes?.source?.principal).toBe('spiffe://a');
    const h = msg.attributes?.request?.http;
    expect([h?.id, h?.method, h?.path, h?.host, h?.scheme, h?.query]).toEqual(['r1', 'GET', '/p?q', 'h', 'https', 'x']);
    expect(h?.headers?.authorization).toBe('Bearer t');
    expect(h?.header_map?.headers?.[0]?.raw_value).toEqual(Buffer.from([0xff]));
    expect(msg.attributes?.context_extensions?.a).toBe('b');
  });

  it('throws on truncation, lengths past the end, invalid wire types and runaway groups', () => {
    const good = encode({ attributes: { request: { http: { path: '/x', method: 'GET' } } } });
    for (let cut = 1; cut < good.length; cut++) expect(() => decodeCheckRequest(good.subarray(0, cut)), `cut at ${cut}`).toThrow(WireDecodeError);
    expect(() => decodeCheckRequest(Buffer.from([0x0a, 0x05, 0x22, 0x10, 0x12]))).toThrow(/past the end/);
    for (const wt of [4, 6, 7]) expect(() => decodeCheckRequest(Buffer.from([(9 << 3) | wt]))).toThrow(/invalid wire type/);
    // Field number 0 (found by the mutation test: protobufjs reads on from it differently).
    expect(() => decodeCheckRequest(Buffer.from([0x00, 0x0a]))).toThrow(/field number 0/);
    expect(() => decodeCheckRequest(Buffer.from([0x0a, 0x02, 0x00, 0x00]))).toThrow(/field number 0/);
    // A known field with another wire type: HttpRequest.size (9, an int64) sent length-delimited, path (4) as a varint.
    const http = (...b: number[]) => Buffer.from([0x0a, b.length + 4, 0x22, b.length + 2, 0x12, b.length, ...b]);
    expect(() => decodeCheckRequest(http(0x4a, 0x01, 0x00))).toThrow(/field 9 with wire type 2, declared 0/);
    expect(() => decodeCheckRequest(http(0x20, 0x01))).toThrow(/field 4 with wire type 0, declared 2/);
    expect(decodeCheckRequest(http(0x48, 0x05, 0x22, 0x01, 0x2f)).attributes?.request?.http?.path).toBe('/');
    expect(() => decodeCheckRequest(Buffer.from([0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).toThrow(/10 bytes/);
    expect(() => decodeCheckRequest(Buffer.alloc(40, (9 << 3) | 3))).toThrow(WireDecodeError);
    // Keys and lengths of 6 to 9 bytes, and a uint32 of 6 to 9 (found by the mutation test):
    // protobufjs reads the first 5 bytes and steps over the next 5 whatever they are.
    expect(() => decodeCheckRequest(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x48, 0x00]))).toThrow(/key or length longer than 5 bytes/);
    expect(() => decodeCheckRequest(Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]))).toThrow(/key or length longer than 5 bytes/);
    expect(decodeCheckRequest(Buffer.from([0xa0, 0x81, 0x80, 0x80, 0x00, 0x05])).attributes).toBeUndefined();
    // AttributeContext.source (1) is a Peer whose address (1) is an Address with socket_address (1) holding port_value (3, a uint32).
    const port = (...v: number[]) => Buffer.from([0x0a, v.length + 7, 0x0a, v.length + 5, 0x0a, v.length + 3, 0x0a, v.length + 1, 0x18, ...v]);
    const ten = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    expect(() => decodeCheckRequest(port(...ten))).not.toThrow();
    expect(protobufjsDecode(port(...ten))).not.toBe(UNDECODABLE_REQUEST);
    for (let n = 6; n < 10; n++) {
      const v = [...Array<number>(n - 1).fill(0x80), 0x01];
      expect(() => decodeCheckRequest(port(...v)), `${n} bytes`).toThrow(/32-bit varint of \d bytes/);
    }
  });

  it('walks the message fields it skips: garbage protobufjs rejects there is rejected too', () => {
    // Found by the mutation test: attributes.request.time (a Timestamp nothing reads) ending in a
    // field key with no value. Stepping over the field by its length alone would decide it.
    const found = Buffer.from(
      '0a670a070a001201412a00120f0a070a05120161180012002a022d61224b0a0c088080808080108080808001123b0a0120120cf0908080f0908080f090808022022f20320568747470733a0220204201204880808080015208485454502f312e315a04f09080806a00',
      'hex',
    );
    expect(protobufjsDecode(found)).toBe(UNDECODABLE_REQUEST);
    expect(() => decodeCheckRequest(found)).toThrow(WireDecodeError);
    // By hand: request { time { seconds: 1, <key of field 3 without its value> }, http { method, path } }.
    const http = Buffer.from([0x12, 0x08, 0x12, 0x03, ...Buffer.from('GET'), 0x22, 0x01, 0x2f]);
    const request = (time: number[]) => Buffer.from([0x0a, 4 + time.length + http.length, 0x22, 2 + time.length + http.length, 0x0a, time.length, ...time, ...http]);
    expect(decodeCheckRequest(request([0x08, 0x01])).attributes?.request?.http?.path).toBe('/');
    expect(protobufjsDecode(request([0x08, 0x01, 0x18]))).toBe(UNDECODABLE_REQUEST);
    expect(() => decodeCheckRequest(request([0x08, 0x01, 0x18]))).toThrow(/truncated varint/);
    // Timestamp.seconds (1) is an int64: as a length-delimited field it is malformed, as protobufjs finds.
    expect(() => decodeCheckRequest(request([0x0a, 0x00]))).toThrow(/field 1 with wire type 2, declared 0/);
  });

  it('keeps a header named __proto__ as an ordinary key and pollutes no prototype', () => {
    // By hand: protobufjs' fromObject cannot even carry a "__proto__" map key.
    const ld = (field: number, ...parts: (Buffer | string)[]) => {
      const body = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
      return Buffer.concat([Buffer.from([(field << 3) | 2, body.length]), body]);
    };
    const entry = (k: string, v: string) => ld(3, ld(1, k), ld(2, v));
    const bytes = ld(1, ld(4, ld(2, ld(2, 'GET'), ld(4, '/'), entry('__proto__', 'x'), entry('constructor', 'y'))));
    const h = decodeCheckRequest(bytes).attributes?.request?.http?.headers;
    expect(Object.hasOwn(h!, '__proto__')).toBe(true);
    expect(h!['__proto__']).toBe('x');
    expect(h!.constructor).toBe('y');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(decodeCheckRequest(encode({ attributes: { request: { http: { method: 'GET', path: '/' } } } })).attributes?.request?.http?.headers?.constructor).toBeUndefined();
  });
});
