import type { Http2Server, ServerHttp2Session } from 'node:http2';
import type * as grpc from '@grpc/grpc-js';

/**
 * Every reliance of zt-authz on something a library does not export, in one file.
 * test/core/library-internals.test.ts pins the version each was read from and fails when the
 * installed library differs or the internal is gone: an upgrade is then a deliberate review of
 * this file, never a silent loss of what it provides.
 *
 * @grpc/grpc-js 1.14: ping-abuse enforcement (gRPC core's min_recv_ping_interval_without_data and
 * max_ping_strikes) is not implemented; `grpc.http2.min_ping_interval_without_data_ms` and
 * `grpc.http2.max_ping_strikes` are accepted and ignored. zt-authz enforces them on the node:http2
 * sessions themselves, which grpc-js keeps in the private `http2Servers` map (listener → sessions)
 * and exposes nowhere else.
 */
export const READ_FROM = { '@grpc/grpc-js': '1.14.7' } as const;

type Http2Servers = Map<Http2Server, { sessions?: Set<ServerHttp2Session> }>;

function http2Servers(server: grpc.Server): Http2Servers | undefined {
  const map = (server as unknown as { http2Servers?: unknown }).http2Servers;
  return map instanceof Map ? (map as Http2Servers) : undefined;
}

/**
 * Calls `fn` for every HTTP/2 session of the server's bound listeners, those already accepted and
 * those to come. Call after bindAsync has called back. False when the internal is gone (then
 * nothing is hooked).
 */
export function onEverySession(server: grpc.Server, fn: (s: ServerHttp2Session) => void): boolean {
  const map = http2Servers(server);
  if (map === undefined || map.size === 0) return false;
  for (const [listener, entry] of map) {
    if (hooked.has(listener)) continue;
    hooked.add(listener);
    listener.on('session', fn);
    // Sessions accepted between listen and this call.
    for (const s of entry.sessions ?? []) fn(s);
  }
  return true;
}

const hooked = new WeakSet<Http2Server>();
