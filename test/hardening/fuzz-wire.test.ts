import type { ClientHttp2Session } from 'node:http2';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WireCheckResponse } from '../../src/response/envoy.js';
import { loadProtos } from '../../src/wire/protos.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { FUZZ_TIMEOUT_MS, demoWith, expectStillServing, fuzzRuns, goodDevToken, goodRequest, grpcFrame, h2Session, rawCall, watchUnhandled, type RawOutcome } from './support.js';

/**
 * Random bytes as gRPC frames over a real socket: a raw node:http2 client posts length-prefixed
 * payloads (random bytes, random protobuf with type-confused fields, valid requests with their
 * prefix broken) to /envoy.service.auth.v3.Authorization/Check. No OK, no hang, no crash.
 */
let srv: TestServer;
let good: string;
let session: ClientHttp2Session;
let unhandled: ReturnType<typeof watchUnhandled>;
const check = () => loadProtos().authorization.Check!;

beforeAll(async () => {
  unhandled = watchUnhandled();
  srv = await startTestServer(demoWith());
  good = await goodDevToken();
  session = await h2Session(srv.grpcAddress);
});
afterAll(async () => {
  unhandled.stop();
  session.destroy();
  await srv.stop();
});

/** The session survives anything we send, but if the server ever drops it, start a new one. */
async function call(body: Buffer, headers?: Record<string, string>): Promise<RawOutcome> {
  if (session.closed || session.destroyed) session = await h2Session(srv.grpcAddress);
  return rawCall(session, body, { timeoutMs: 3000, ...(headers ? { headers } : {}) });
}

function decodeResponse(body: Buffer): WireCheckResponse {
  expect(body.length).toBeGreaterThanOrEqual(5);
  const len = body.readUInt32BE(1);
  return check().responseDeserialize(body.subarray(5, 5 + len)) as WireCheckResponse;
}

/** No OK: either an RPC error, or a CheckResponse whose status is a deny. Never a hang. */
function expectNoOk(out: RawOutcome): void {
  expect(out.timedOut, 'answer before the deadline').toBe(false);
  if (out.grpcStatus === 0) expect(decodeResponse(out.body).status.code).not.toBe(0);
}

// --- a protobuf writer for type-confused messages --------------------------------------------

function varint(v: bigint): Buffer {
  const out: number[] = [];
  let x = BigInt.asUintN(64, v);
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x > 0n) b |= 0x80;
    out.push(b);
  } while (x > 0n);
  return Buffer.from(out);
}
const tag = (field: number, wire: number) => varint((BigInt(field) << 3n) | BigInt(wire));

/** Field numbers the CheckRequest tree really uses (so types collide with real fields), and others. */
const fieldNo = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 13 }) }, fc.integer({ min: 1, max: 536_870_911 }));

const pb = fc.letrec<{ msg: Buffer; field: Buffer }>((tie) => ({
  msg: fc.array(tie('field'), { maxLength: 6 }).map((fs) => Buffer.concat(fs)),
  field: fc.oneof(
    { depthSize: 'small', maxDepth: 5 },
    fc.tuple(fieldNo, fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n })).map(([f, v]) => Buffer.concat([tag(f, 0), varint(v)])),
    fc.tuple(fieldNo, fc.uint8Array({ minLength: 8, maxLength: 8 })).map(([f, b]) => Buffer.concat([tag(f, 1), b])),
    fc.tuple(fieldNo, fc.uint8Array({ minLength: 4, maxLength: 4 })).map(([f, b]) => Buffer.concat([tag(f, 5), b])),
    fc.tuple(fieldNo, fc.oneof(fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)), fc.string({ unit: 'binary', maxLength: 32 }).map((s) => Buffer.from(s)))).map(([f, b]) =>
      Buffer.concat([tag(f, 2), varint(BigInt(b.length)), b]),
    ),
    fc.tuple(fieldNo, tie('msg')).map(([f, b]) => Buffer.concat([tag(f, 2), varint(BigInt(b.length)), b])),
    // Length that runs past the end, groups, and the reserved wire types 6 and 7.
    fc.tuple(fieldNo, fc.integer({ min: 1, max: 1 << 30 }), fc.uint8Array({ maxLength: 8 })).map(([f, n, b]) => Buffer.concat([tag(f, 2), varint(BigInt(n)), b])),
    fc.tuple(fieldNo, fc.constantFrom(3, 4, 6, 7)).map(([f, w]) => tag(f, w)),
  ),
})).msg;

describe('random bytes as gRPC frames over a real socket', () => {
  it('random payloads in a well-formed frame get an explicit deny before the deadline', async () => {
    const payload = fc.oneof(fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)), pb);
    await fc.assert(
      fc.asyncProperty(payload, async (bytes) => {
        const out = await call(grpcFrame(bytes));
        expectNoOk(out);
        // Whatever the bytes, the answer is a decision, not an RPC error Envoy would count as a failure.
        expect(out.grpcStatus, out.grpcMessage).toBe(0);
      }),
      { numRuns: fuzzRuns(300) },
    );
    await expectStillServing(srv.client, good);
    expect(unhandled.reasons).toEqual([]);
  }, FUZZ_TIMEOUT_MS);

  it('a valid request with a broken prefix or trailing garbage never gets OK', async () => {
    const valid = check().requestSerialize(goodRequest(good));
    const intact = grpcFrame(valid);
    const broken = fc.oneof(
      // Declared length longer or shorter than what follows.
      fc.integer({ min: 0, max: 2 ** 32 - 1 }).filter((n) => n !== valid.length).map((n) => grpcFrame(valid, 0, n)),
      // Two messages in a unary call, or a valid one followed by random bytes.
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map((tail) => Buffer.concat([grpcFrame(valid), Buffer.from(tail)])),
      fc.constant(Buffer.concat([grpcFrame(valid), grpcFrame(valid)])),
      // Cut anywhere, including inside the 5-byte prefix.
      fc.nat(valid.length + 4).map((cut) => grpcFrame(valid).subarray(0, cut)),
      fc.uint8Array({ maxLength: 4 }).map((b) => Buffer.from(b)),
    );
    await fc.assert(
      fc.asyncProperty(broken, async (body) => {
        const out = await call(body);
        // grpc-js dispatches a unary call on its first complete message and ignores what trails it.
        // Those bytes are then exactly the valid request, so a decision either way is correct.
        if (body.subarray(0, intact.length).equals(intact)) expect(out.timedOut).toBe(false);
        else expectNoOk(out);
      }),
      { numRuns: fuzzRuns(200) },
    );
    // grpc-js reads any compressed-flag value under identity encoding as "not compressed" (the gRPC
    // spec says INTERNAL). The bytes are still exactly the valid request, so a decision is fine; what
    // matters is that the flag cannot smuggle in anything else: random bytes flagged stay denied.
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 255 }), fc.uint8Array({ maxLength: 512 }), async (flag, bytes) => {
        const out = await call(grpcFrame(Buffer.from(bytes), flag));
        expectNoOk(out);
      }),
      { numRuns: fuzzRuns(100) },
    );
    await expectStillServing(srv.client, good);
    expect(unhandled.reasons).toEqual([]);
  }, FUZZ_TIMEOUT_MS);

  it('odd call headers (content-type, grpc-encoding, grpc-timeout, te) never get OK', async () => {
    const valid = grpcFrame(check().requestSerialize(goodRequest(good)));
    const headers = fc.record(
      {
        'content-type': fc.constantFrom('application/grpc', 'application/grpc+proto', 'application/json', 'text/plain', ''),
        'grpc-encoding': fc.constantFrom('gzip', 'deflate', 'identity', 'snappy', 'x'),
        'grpc-timeout': fc.constantFrom('1n', '0m', '99999999H', '-5m', 'abc', '1S'),
        te: fc.constantFrom('trailers', 'gzip', ''),
      },
      { requiredKeys: [] },
    );
    const body = fc.oneof(fc.constant(valid), fc.uint8Array({ maxLength: 256 }).map((b) => grpcFrame(b, 1)));
    await fc.assert(
      fc.asyncProperty(headers, body, async (h, b) => {
        const out = await call(b, h);
        expect(out.timedOut).toBe(false);
        // A valid request with harmless header variations may be allowed; the compressed garbage never.
        if (b !== valid) expectNoOk(out);
      }),
      { numRuns: fuzzRuns(100) },
    );
    await expectStillServing(srv.client, good);
    expect(unhandled.reasons).toEqual([]);
  }, FUZZ_TIMEOUT_MS);
});
