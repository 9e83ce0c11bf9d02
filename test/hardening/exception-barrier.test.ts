import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { responseHeader } from '../helpers/grpc.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { demoWith, expectStillServing, goodDevToken, goodRequest, watchUnhandled } from './support.js';

/**
 * A thrown exception anywhere in the pipeline must become an explicit deny (internal_error), never
 * an OK, an RPC failure Envoy would count against failure_mode_allow, a hang or a crash.
 *
 * No configuration or request is known to make the real pipeline throw (every such input found by
 * the fuzzers became a test of its own), so these tests put a throwing part into the running App
 * through its internals. This is the one place in the suite where a fake is justified: the barrier
 * exists for bugs we do not know of yet, and a fake is the only way to have one on demand.
 * Everything else is real: the gRPC socket, the client, the pipeline, the responder.
 */
let srv: TestServer;
let good: string;
let unhandled: ReturnType<typeof watchUnhandled>;
let restore: (() => void) | undefined;

interface Internals {
  active: Record<string, unknown> & { authenticator: object };
  assemble(compiled: Record<string, unknown>, authenticator: unknown): Internals["active"];
}
const internals = (app: App) => app as unknown as Internals;

/**
 * Swaps part of the App's active set until the test ends: the pipeline or a responder as is, the
 * policy or the authenticator by assembling a pipeline around it (engines hold theirs).
 */
function replaceActive(part: 'policy' | 'authenticator' | 'pipeline' | 'envoy' | 'http', value: unknown): void {
  const app = internals(srv.app);
  const before = app.active;
  const swapped = { ...before, [part]: value };
  app.active = part === 'policy' || part === 'authenticator' ? app.assemble(swapped, swapped.authenticator) : swapped;
  restore = () => (app.active = before);
}

beforeAll(async () => {
  unhandled = watchUnhandled();
  srv = await startTestServer(demoWith());
  good = await goodDevToken();
});
afterEach(async () => {
  restore?.();
  restore = undefined;
  await expectStillServing(srv.client, good);
});
afterAll(async () => {
  unhandled.stop();
  expect(unhandled.reasons).toEqual([]);
  await srv.stop();
});

async function expectInternalErrorDeny(): Promise<void> {
  const r = await srv.client.check(goodRequest(good), { deadlineMs: 3000 });
  // A CheckResponse deny, not an RPC error: Envoy denies it even with failure_mode_allow: true.
  expect(r.rpcCode).toBe(0);
  expect(r.response!.status).toEqual({ code: 7, message: 'internal_error' });
  expect(r.response!.ok_response).toBeUndefined();
  expect(r.response!.denied_response!.status.code).toBe(500);
  expect(responseHeader(r.response, 'x-zt-authz-reason')).toBe('internal_error');
}

describe('exception barrier', () => {
  it('a policy that throws synchronously', async () => {
    replaceActive('policy', {
      ...internals(srv.app).active.policy as object,
      evaluate() {
        throw new TypeError("Cannot read properties of undefined (reading 'x')");
      },
    });
    await expectInternalErrorDeny();
  });

  it('an authenticator whose verification rejects (async path)', async () => {
    const fake = Object.create(internals(srv.app).active.authenticator) as Record<string, unknown>;
    fake.authenticate = () => Promise.reject(new Error('key store exploded'));
    replaceActive('authenticator', fake);
    await expectInternalErrorDeny();
  });

  it('a state backend that throws', async () => {
    const state = srv.app.state as unknown as Record<string, unknown>;
    const real = state.ipBlocked;
    state.ipBlocked = () => {
      throw new Error('state lookup failed');
    };
    restore = () => (state.ipBlocked = real);
    await expectInternalErrorDeny();
  });

  it('a pipeline that throws before it can build a decision (the transport barrier)', async () => {
    replaceActive('pipeline', {
      decideWire() {
        throw new RangeError('Maximum call stack size exceeded');
      },
    });
    await expectInternalErrorDeny();
  });

  it('a pipeline whose promise rejects (the transport barrier, async)', async () => {
    replaceActive('pipeline', { decideWire: () => Promise.reject(new Error('late failure')) });
    await expectInternalErrorDeny();
  });

  it('a responder that throws while building the answer, even for an allow', async () => {
    replaceActive('envoy', {
      encode() {
        throw new Error('serialisation bug');
      },
    });
    await expectInternalErrorDeny();
  });

  it('the HTTP authorization mode denies with 500 internal_error when the policy throws', async () => {
    replaceActive('policy', {
      ...internals(srv.app).active.policy as object,
      evaluate() {
        throw new Error('boom');
      },
    });
    const res = await fetch(`${srv.httpUrl}/authz/api/orders`, { headers: { authorization: `Bearer ${good}`, 'x-real-ip': '10.200.0.1' } });
    expect(res.status).toBe(500);
    expect(res.headers.get('x-zt-authz-reason')).toBe('internal_error');
  });

  it('the HTTP authorization mode answers 500 (never silence) when the responder itself throws', async () => {
    replaceActive('http', {
      write() {
        throw new Error('header bug');
      },
    });
    const res = await fetch(`${srv.httpUrl}/authz/api/orders`, {
      headers: { authorization: `Bearer ${good}`, 'x-real-ip': '10.200.0.2' },
      signal: AbortSignal.timeout(5000),
    });
    expect(res.status).toBe(500);
    expect(res.headers.get('x-zt-authz-reason')).toBe('internal_error');
    expect(await res.json()).toEqual({ error: 'internal_error' });
  });
});
