import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../observability/logger.js';
import { ADMIN_UNBLOCK_PATH, handleAdmin, type AdminOptions } from './admin-endpoint.js';
import { handleHttpAuthz, type HttpAuthzOptions } from './http-authz.js';

export interface ReadinessReport {
  readonly ready: boolean;
  readonly components: Record<string, unknown>;
}

export interface OpsServerDeps {
  readonly readiness: () => ReadinessReport;
  /** The /metrics body: this process's registry, or the sum over cluster workers. */
  readonly metricsText: () => Promise<string>;
  readonly metricsContentType: string;
  readonly authz: HttpAuthzOptions;
  readonly logger: Logger;
  /** True once shutdown began: readiness fails so load balancers stop sending work. */
  readonly draining: () => boolean;
  /** The live security page under /ui/, when it is on. */
  readonly ui?: ((req: IncomingMessage, res: ServerResponse, path: string) => boolean) | undefined;
  /** Undefined when the admin endpoint is off (see adminRefusal). */
  readonly admin?: AdminOptions | undefined;
}

/** /healthz (process alive), /readyz (can decide), /metrics, and the HTTP authorization mode. */
export function createOpsServer(deps: OpsServerDeps): Server {
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const path = url.split('?', 1)[0];
    try {
      if (path === deps.authz.prefix || path?.startsWith(deps.authz.prefix + '/')) {
        handleHttpAuthz(deps.authz, req, res);
        return;
      }
      if (deps.ui !== undefined && path !== undefined && deps.ui(req, res, path)) return;
      if (path === ADMIN_UNBLOCK_PATH && deps.admin !== undefined) {
        handleAdmin(deps.admin, req, res);
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET' }).end();
        return;
      }
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        return;
      }
      if (path === '/readyz') {
        const report = deps.readiness();
        const ready = report.ready && !deps.draining();
        res
          .writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ ready, draining: deps.draining(), ...report.components }));
        return;
      }
      if (path === '/metrics') {
        deps.metricsText().then(
          (text) => res.writeHead(200, { 'content-type': deps.metricsContentType }).end(text),
          (err: unknown) => {
            deps.logger.error({ err }, 'metrics failed');
            res.writeHead(500).end();
          },
        );
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
    } catch (err) {
      deps.logger.error({ err }, 'http handler failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"internal_error"}');
    }
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  return server;
}

export function listenHttp(server: Server, address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new Error(`cannot listen on ${address}: ${err.message}`));
    server.once('error', onError);
    const done = () => {
      server.off('error', onError);
      const a = server.address();
      resolve(typeof a === 'string' || a === null ? address : `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
    };
    if (address.startsWith('unix:')) {
      server.listen(address.slice(5), done);
      return;
    }
    const idx = address.lastIndexOf(':');
    const host = address.slice(0, idx).replace(/^\[|\]$/g, '');
    server.listen(Number(address.slice(idx + 1)), host, done);
  });
}
