import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CONFIG } from '../../src/config/defaults.js';
import { signDevToken } from '../../src/identity/dev-token.js';
import { checkRequest } from '../helpers/grpc.js';
import { startTestServer, waitFor, type TestServer } from '../helpers/server.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  status?: { code?: number };
  attributes: { key: string; value: Record<string, unknown> }[];
}

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

/** A real OTLP/HTTP receiver: records every POST body sent to /v1/traces. */
let receiver: Server;
const posts: { url: string; contentType: string; apiKey: string; body: unknown }[] = [];
let srv: TestServer;

const body = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let b = '';
    req.on('data', (c: Buffer) => (b += c.toString()));
    req.on('end', () => resolve(b));
  });

beforeAll(async () => {
  receiver = createServer((req, res) => {
    void body(req).then((b) => {
      posts.push({ url: req.url ?? '', contentType: String(req.headers['content-type']), apiKey: String(req.headers['x-api-key']), body: JSON.parse(b) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const { port } = receiver.address() as AddressInfo;
  srv = await startTestServer({
    ...DEMO_CONFIG,
    tracing: { otlp_endpoint: `http://127.0.0.1:${port}/v1/traces`, otlp_headers: { 'x-api-key': 'k1' }, export_interval_ms: 50, service_name: 'zt-authz-test' },
  } as typeof DEMO_CONFIG);
});
afterAll(async () => {
  await srv.stop();
  await new Promise((resolve) => receiver.close(resolve));
});

const spans = (): (OtlpSpan & { service: unknown })[] =>
  posts.flatMap((p) => {
    const b = p.body as { resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[] };
    return b.resourceSpans.flatMap((rs) =>
      rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => ({ ...s, service: rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue }))),
    );
  });
const attr = (s: OtlpSpan, key: string) => s.attributes.find((a) => a.key === key)?.value;

describe('OpenTelemetry spans over OTLP/HTTP', () => {
  it('exports one span per Check, a child of the caller trace when Envoy sends traceparent, with the decision on it', async () => {
    const token = await signDevToken({ sub: 'alice', ttlS: 600, claims: { allowed_resources: ['orders'], clearance_level: 'internal' } });
    const denied = await srv.client.check(checkRequest({ headers: { traceparent: `00-${TRACE}-${SPAN}-01` } }));
    expect(denied.response?.status.code).not.toBe(0);
    const allowed = await srv.client.check(checkRequest({ token }));
    expect(allowed.response?.status.code).toBe(0);
    await waitFor(() => spans().length >= 2, 15_000, 'two spans at the receiver');
    expect(posts.every((p) => p.url === '/v1/traces' && p.contentType.startsWith('application/json') && p.apiKey === 'k1')).toBe(true);
    const [child, root] = [spans().find((s) => s.traceId === TRACE), spans().find((s) => s.traceId !== TRACE)];
    expect(child).toBeDefined();
    expect(root).toBeDefined();
    expect(child!.parentSpanId).toBe(SPAN);
    expect(child!.name).toBe('envoy.service.auth.v3.Authorization/Check');
    expect(child!.kind).toBe(2); // SPAN_KIND_SERVER
    expect(child!.service).toBe('zt-authz-test');
    expect(attr(child!, 'zt_authz.allow')).toEqual({ boolValue: false });
    expect(attr(child!, 'zt_authz.reason')?.['stringValue']).toBe(denied.response?.status.message);
    expect(attr(child!, 'zt_authz.policy_hash')?.['stringValue']).toBe(srv.app.policyHash);
    expect(root!.parentSpanId ?? '').toBe('');
    expect(attr(root!, 'zt_authz.reason')).toEqual({ stringValue: 'allowed' });
    expect(attr(root!, 'zt_authz.resource')).toEqual({ stringValue: 'orders' });
    expect(BigInt(root!.endTimeUnixNano) >= BigInt(root!.startTimeUnixNano)).toBe(true);
    const startedMs = Number(BigInt(root!.startTimeUnixNano) / 1_000_000n);
    expect(Math.abs(startedMs - Date.now())).toBeLessThan(60_000);
  });

  it('honours an unsampled parent: no span for a Check whose trace Envoy did not sample', async () => {
    const before = spans().length;
    const unsampled = '1'.repeat(32);
    await srv.client.check(checkRequest({ headers: { traceparent: `00-${unsampled}-${SPAN}-00` } }));
    const marker = '2'.repeat(32);
    await srv.client.check(checkRequest({ headers: { traceparent: `00-${marker}-${SPAN}-01` } }));
    await waitFor(() => spans().some((s) => s.traceId === marker), 15_000, 'the sampled marker span');
    expect(spans().length).toBeGreaterThan(before);
    expect(spans().some((s) => s.traceId === unsampled)).toBe(false);
  });
});
