import { readFileSync } from 'node:fs';
import { connect, type ServerHttp2Session } from 'node:http2';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { bindGrpc } from '../../src/transport/grpc-server.js';
import { onEverySession, READ_FROM } from '../../src/transport/grpc-internals.js';
import { waitFor } from '../helpers/server.js';

/**
 * src/transport/grpc-internals.ts relies on what libraries do not export. These tests fail, not
 * warn, when the installed library is another version than the one the adapter was read from,
 * or when an internal it reads is gone: then review the adapter before raising READ_FROM.
 */
const require = createRequire(import.meta.url);
const installed = (pkg: string) => (JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')) as { version: string }).version;

describe('library internals the adapter reads', () => {
  it.each(Object.entries(READ_FROM))('%s is the version the adapter was read from (%s)', (pkg, version) => {
    expect(installed(pkg)).toBe(version);
  });

  it("grpc-js's private http2Servers map yields the sessions of a bound server, old and new", async () => {
    const server = new grpc.Server();
    const address = await bindGrpc(server, '127.0.0.1:0');
    const before = connect(`http://${address}`);
    await new Promise<void>((r) => before.once('connect', () => r()));
    const seen = new Set<ServerHttp2Session>();
    try {
      expect(onEverySession(server, (s) => seen.add(s))).toBe(true);
      // The session accepted before the hook was handed over at once.
      await waitFor(() => seen.size === 1, 10_000, 'the existing session');
      const after = connect(`http://${address}`);
      try {
        await waitFor(() => seen.size === 2, 10_000, 'the new session');
      } finally {
        after.destroy();
      }
    } finally {
      before.destroy();
      server.forceShutdown();
    }
  });

  it('reports the internal gone instead of hooking nothing silently', () => {
    const server = new grpc.Server();
    // Not bound: grpc-js has no listener yet, the same view an upgrade that renamed the map gives.
    expect(onEverySession(server, () => undefined)).toBe(false);
    (server as unknown as { http2Servers: unknown }).http2Servers = undefined;
    expect(onEverySession(server, () => undefined)).toBe(false);
  });

  it('grpc-js still ignores the ping-abuse options, which zt-authz enforces itself', () => {
    const src = readFileSync(require.resolve('@grpc/grpc-js/build/src/server.js'), 'utf8');
    // Once grpc-js implements them, enforcePingPolicy duplicates it: pass the options and drop ours.
    expect(src).not.toMatch(/min_ping_interval_without_data|max_ping_strikes/);
  });
});
