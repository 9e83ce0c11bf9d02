import { constants as h2c, type ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WireCheckRequest } from '../../src/wire/check-request.js';
import { loadProtos } from '../../src/wire/protos.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { FLAG, FRAME, frame, grpcHeaderBlock, maxConcurrentStreams, rawH2 } from './raw-h2.js';
import { CHECK_PATH, demoWith, expectStillServing, goodDevToken, goodRequest, grpcFrame, h2Session, isDecision, rawCall } from './support.js';

/** Abuse limits of the gRPC listener, each against a server configured with it, over real sockets. */
let good: string;
const servers: TestServer[] = [];
const sessions: ClientHttp2Session[] = [];

beforeAll(async () => {
  good = await goodDevToken();
});
afterAll(async () => {
  for (const s of sessions) s.destroy();
  await Promise.all(servers.map((s) => s.stop()));
});

async function serve(limits: Record<string, number>): Promise<TestServer> {
  const srv = await startTestServer(demoWith({ limits }));
  servers.push(srv);
  return srv;
}

async function session(srv: TestServer): Promise<ClientHttp2Session> {
  const s = await h2Session(srv.grpcAddress);
  sessions.push(s);
  return s;
}

function hostPort(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The known-good request padded with a header so that it serialises to exactly `bytes`. */
function requestOfSize(bytes: number): Buffer {
  const ser = loadProtos().authorization.Check!.requestSerialize;
  const req = goodRequest(good) as WireCheckRequest;
  const headers = req.attributes!.request!.http!.headers!;
  headers['x-pad'] = '';
  for (let i = 0; i < 5; i++) {
    const size = ser(req).length;
    if (size === bytes) return ser(req);
    headers['x-pad'] = 'a'.repeat(headers['x-pad']!.length + bytes - size);
  }
  throw new Error(`cannot pad a request to exactly ${bytes} bytes`);
}

describe('max_concurrent_streams', () => {
  it('10,000 streams opened on one connection: the server advertises the limit, refuses the excess and stays up', async () => {
    const LIMIT = 100;
    const srv = await serve({ max_concurrent_streams: LIMIT });
    const c = await rawH2(...hostPort(srv.grpcAddress));
    try {
      const settings = await c.waitFor((f) => f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK), 5000);
      expect(maxConcurrentStreams(settings!.payload)).toBe(LIMIT);

      // A client that ignores the advertised limit: 10,000 HEADERS, none of them ever finished.
      const block = grpcHeaderBlock(CHECK_PATH);
      const N = 10_000;
      const burst: Buffer[] = [];
      for (let i = 0; i < N; i++) burst.push(frame(FRAME.HEADERS, FLAG.END_HEADERS, 2 * i + 1, block));
      c.write(Buffer.concat(burst));
      await Promise.race([c.closed, c.waitFor((f) => f.type === FRAME.GOAWAY, 15_000)]);
      await sleep(200);

      const reset = new Set(c.frames.filter((f) => f.type === FRAME.RST_STREAM).map((f) => f.streamId));
      const goaway = c.frames.find((f) => f.type === FRAME.GOAWAY);
      const lastProcessed = goaway ? goaway.payload.readUInt32BE(0) & 0x7fffffff : 2 * N - 1;
      let accepted = 0;
      for (let id = 1; id <= lastProcessed; id += 2) if (!reset.has(id)) accepted++;
      // Every stream beyond the limit was refused (RST_STREAM) or never processed (GOAWAY). Node's
      // HTTP/2 layer (nghttp2) answers the first stream over the limit by closing the whole
      // connection: GOAWAY naming the last stream it took, and RST_STREAM for those still open.
      expect(accepted).toBeLessThanOrEqual(LIMIT);
      expect(reset.size + (goaway ? N - (lastProcessed + 1) / 2 : 0)).toBeGreaterThanOrEqual(N - LIMIT);
    } finally {
      c.destroy();
    }
    // The abuser's connection is the only casualty.
    await expectStillServing(srv.client, good);
  });
});

describe('max_receive_message_bytes', () => {
  let srv: TestServer;
  let s: ClientHttp2Session;
  beforeAll(async () => {
    srv = await serve({});
    s = await session(srv);
  });

  it('a 4 MiB + 1 message gets RESOURCE_EXHAUSTED and the server stays up; 4 MiB exactly is decided', async () => {
    const MiB4 = 4 * 1024 * 1024;
    const over = await rawCall(s, grpcFrame(requestOfSize(MiB4 + 1)), { timeoutMs: 10_000 });
    expect(over.timedOut).toBe(false);
    expect(over.grpcStatus).toBe(h2GrpcStatus.RESOURCE_EXHAUSTED);

    const atLimit = await rawCall(await session(srv), grpcFrame(requestOfSize(MiB4)), { timeoutMs: 10_000 });
    expect(atLimit.grpcStatus).toBe(0);

    // The same through an ordinary grpc-js client.
    const req = goodRequest(good);
    req.attributes!.request!.http!.headers!['x-pad'] = 'a'.repeat(MiB4);
    const viaClient = await srv.client.check(req, { deadlineMs: 10_000 });
    expect(viaClient.rpcCode).toBe(h2GrpcStatus.RESOURCE_EXHAUSTED);
    await expectStillServing(srv.client, good);
  });

  it('a prefix that declares 4 GiB is refused without waiting for the bytes', async () => {
    const out = await rawCall(await session(srv), grpcFrame(Buffer.alloc(16), 0, 0xffffffff), { timeoutMs: 5000 });
    expect(out.timedOut).toBe(false);
    expect(out.grpcStatus).toBe(h2GrpcStatus.RESOURCE_EXHAUSTED);
    await expectStillServing(srv.client, good);
  });
});

const h2GrpcStatus = { RESOURCE_EXHAUSTED: 8 } as const;

function goawayOf(s: ClientHttp2Session, timeoutMs: number): Promise<{ code: number; data: string } | 'closed' | 'timeout'> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('timeout'), timeoutMs);
    s.once('goaway', (code: number, _last: number, data?: Buffer) => {
      clearTimeout(t);
      resolve({ code, data: data?.toString('latin1') ?? '' });
    });
    s.once('close', () => {
      clearTimeout(t);
      resolve('closed');
    });
  });
}

function ping(s: ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    try {
      if (!s.ping(() => resolve())) resolve();
    } catch {
      resolve();
    }
  });
}

describe('keepalive enforcement (ping abuse)', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await serve({ keepalive_min_ping_interval_ms: 5000, keepalive_max_ping_strikes: 2 });
  });

  it('a client pinging without data faster than the minimum interval gets GOAWAY ENHANCE_YOUR_CALM "too_many_pings"', async () => {
    const s = await session(srv);
    const got = goawayOf(s, 5000);
    for (let i = 0; i < 10 && !s.closed && !s.destroyed; i++) await ping(s);
    expect(await got).toEqual({ code: h2c.NGHTTP2_ENHANCE_YOUR_CALM, data: 'too_many_pings' });
    await expectStillServing(srv.client, good);
  });

  it('pings between calls are not abuse', async () => {
    const s = await session(srv);
    const got = goawayOf(s, 1500);
    for (let i = 0; i < 6; i++) {
      await ping(s);
      const out = await rawCall(s, grpcFrame(loadProtos().authorization.Check!.requestSerialize(goodRequest(good))));
      expect(out.grpcStatus).toBe(0);
    }
    expect(await got).toBe('timeout');
  });
});

describe('connection idle and age limits', () => {
  it('an idle connection is closed after max_connection_idle_ms', async () => {
    const srv = await serve({ max_connection_idle_ms: 300 });
    const s = await session(srv);
    const ended = await goawayOf(s, 5000);
    expect(ended).not.toBe('timeout');
    if (typeof ended === 'object') expect(ended.code).toBe(h2c.NGHTTP2_NO_ERROR);
    // Clients reconnect; the server is unaffected.
    await expectStillServing(srv.client, good);
  });

  it('a busy connection is still retired after max_connection_age_ms, without failing its calls', async () => {
    const srv = await serve({ max_connection_age_ms: 500, max_connection_age_grace_ms: 2000 });
    const s = await session(srv);
    const ended = goawayOf(s, 5000);
    let done = false;
    void ended.then(() => (done = true));
    const body = grpcFrame(loadProtos().authorization.Check!.requestSerialize(goodRequest(good)));
    const outcomes = [];
    while (!done) {
      outcomes.push(await rawCall(s, body));
      await sleep(20);
    }
    const r = await ended;
    expect(r).not.toBe('timeout');
    if (typeof r === 'object') expect(r.code).toBe(h2c.NGHTTP2_NO_ERROR);
    // Every call issued before the GOAWAY got its answer. The last one may have crossed the
    // GOAWAY on the wire; HTTP/2 then refuses it (no grpc-status), which a client retries.
    expect(outcomes.length).toBeGreaterThan(3);
    for (const o of outcomes.slice(0, -1)) expect(o.grpcStatus).toBe(0);
    expect([0, undefined]).toContain(outcomes.at(-1)!.grpcStatus);
    const fresh = await srv.client.check(goodRequest(good));
    expect(isDecision(fresh)).toBe(true);
  });
});
