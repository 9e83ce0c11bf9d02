import { connect, constants as h2, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import type { ConfigInput } from '../../src/config/schema/index.js';
import { DEMO_CONFIG } from '../../src/config/defaults.js';
import { signDevToken } from '../../src/identity/dev-token.js';
import type { WireCheckRequest } from '../../src/wire/check-request.js';
import { checkRequest, type AuthzClient, type CheckResult } from '../helpers/grpc.js';

export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

/**
 * The one source address the known-good request uses. Fuzzed and attacking requests come from
 * elsewhere, so auto-remediation (blocking IPs after repeated auth failures) never blocks it.
 */
export const GOOD_IP = '10.200.0.1';

/** Fuzz budget per property: small in CI, large nightly (FUZZ_RUNS=20000 npm run ...). */
export function fuzzRuns(ci: number): number {
  const env = Number(process.env.FUZZ_RUNS);
  return Number.isInteger(env) && env > 0 ? env : ci;
}

/** Nightly runs take as long as they need. */
// Generous: the whole suite shares two cores, and the huge-header cases encode up to 1 MiB each.
export const FUZZ_TIMEOUT_MS = process.env.FUZZ_RUNS ? 4 * 3600_000 : 120_000;

type Limits = NonNullable<NonNullable<ConfigInput['server']>['limits']>;

/** The demo config (bundled dev keys, memory state) with some server settings changed. */
export function demoWith(server: { limits?: Limits; shutdown_grace_ms?: number; decision_timeout_ms?: number } = {}): ConfigInput {
  const cfg = structuredClone(DEMO_CONFIG) as ConfigInput & { server?: Record<string, unknown> };
  cfg.server = { ...(cfg.server ?? {}), ...server };
  return cfg;
}

/** Claims that satisfy the demo policy for GET /api/orders (resource `orders`: medium, internal). */
export const GOOD_CLAIMS = { allowed_resources: ['orders', 'profile'], clearance_level: 'internal', risk_score: 0.1 } as const;

export function goodDevToken(sub = 'alice'): Promise<string> {
  return signDevToken({ sub, ttlS: 3600, claims: GOOD_CLAIMS });
}

export function goodRequest(token: string): WireCheckRequest {
  return checkRequest({ token, path: '/api/orders', method: 'GET', sourceIp: GOOD_IP });
}

export function isAllow(r: CheckResult): boolean {
  return r.rpcCode === 0 && r.response?.status?.code === 0;
}

/** A decision arrived (allow or an explicit deny), as opposed to an RPC failure or timeout. */
export function isDecision(r: CheckResult): boolean {
  return r.rpcCode === 0 && typeof r.response?.status?.code === 'number';
}

export function reasonOf(r: CheckResult): string | undefined {
  return r.response?.status?.message || r.rpcDetails;
}

/** Throws unless the server still answers the known-good request with OK. */
export async function expectStillServing(client: AuthzClient, token: string): Promise<void> {
  const r = await client.check(goodRequest(token), { deadlineMs: 5000 });
  if (!isAllow(r)) throw new Error(`known-good request not allowed: ${JSON.stringify(r)}`);
}

/** Counts unhandled rejections while a test runs: a fault that escapes the barriers shows here. */
export function watchUnhandled(): { readonly count: () => number; readonly reasons: unknown[]; stop(): void } {
  const reasons: unknown[] = [];
  const on = (r: unknown) => reasons.push(r);
  process.on('unhandledRejection', on);
  return { count: () => reasons.length, reasons, stop: () => process.off('unhandledRejection', on) };
}

/** gRPC length-prefixed message: 1 byte compressed flag, 4 bytes big-endian length, payload. */
export function grpcFrame(payload: Uint8Array, compressed = 0, declaredLength = payload.length): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(compressed, 0);
  head.writeUInt32BE(declaredLength >>> 0, 1);
  return Buffer.concat([head, payload]);
}

export function h2Session(grpcAddress: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = connect(`http://${grpcAddress}`);
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
    s.once('error', reject);
  });
}

export interface RawOutcome {
  /** What came back: HTTP status and gRPC trailers, or how the stream died. */
  httpStatus?: number;
  grpcStatus?: number;
  grpcMessage?: string;
  body: Buffer;
  rstCode?: number;
  error?: string;
  timedOut: boolean;
}

/** One unary call with an arbitrary body on a raw HTTP/2 stream; never rejects. */
export function rawCall(session: ClientHttp2Session, body: Buffer, opts: { timeoutMs?: number; headers?: Record<string, string> } = {}): Promise<RawOutcome> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  return new Promise((resolve) => {
    const out: RawOutcome = { body: Buffer.alloc(0), timedOut: false };
    const chunks: Buffer[] = [];
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      out.body = Buffer.concat(chunks);
      resolve(out);
    };
    const timer = setTimeout(() => {
      out.timedOut = true;
      stream.close(h2.NGHTTP2_CANCEL);
      finish();
    }, timeoutMs);
    let stream: ClientHttp2Stream;
    try {
      stream = session.request({
        ':method': 'POST',
        ':path': CHECK_PATH,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${timeoutMs}m`,
        ...opts.headers,
      });
    } catch (err) {
      clearTimeout(timer);
      resolve({ body: Buffer.alloc(0), error: (err as Error).message, timedOut: false });
      return;
    }
    const readTrailers = (h: Record<string, unknown>) => {
      if (h['grpc-status'] !== undefined) out.grpcStatus = Number(h['grpc-status']);
      if (h['grpc-message'] !== undefined) out.grpcMessage = decodeURIComponent(String(h['grpc-message']));
    };
    stream.on('response', (h) => {
      out.httpStatus = Number(h[':status']);
      readTrailers(h);
    });
    stream.on('trailers', readTrailers);
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', (err) => {
      out.error = err.message;
    });
    stream.on('close', () => {
      if (stream.rstCode !== undefined && stream.rstCode !== h2.NGHTTP2_NO_ERROR) out.rstCode = stream.rstCode;
      finish();
    });
    stream.end(body);
  });
}

export interface LoadSample {
  readonly label: string;
  readonly startedMs: number;
  readonly ms: number;
  readonly result: CheckResult;
}

/**
 * Checks running back to back with `concurrency` workers until stop(): the "load" dependency
 * faults are injected under. `next` picks each request (and a label to sort the results by).
 */
export function loadLoop(
  client: AuthzClient,
  next: () => { label: string; req: WireCheckRequest },
  opts: { concurrency?: number; deadlineMs?: number } = {},
): { readonly samples: LoadSample[]; stop(): Promise<LoadSample[]> } {
  const samples: LoadSample[] = [];
  let running = true;
  const worker = async () => {
    while (running) {
      const { label, req } = next();
      const startedMs = performance.now();
      const result = await client.check(req, { deadlineMs: opts.deadlineMs ?? 1000 });
      samples.push({ label, startedMs, ms: performance.now() - startedMs, result });
      // Yield so the server side (same process) gets its turn even when answers are synchronous.
      await new Promise((r) => setImmediate(r));
    }
  };
  const workers = Array.from({ length: opts.concurrency ?? 4 }, worker);
  return {
    samples,
    async stop() {
      running = false;
      await Promise.all(workers);
      return samples;
    },
  };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
