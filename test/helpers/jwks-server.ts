import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the server does with the next requests. */
export type JwksFault = 'none' | 'status500' | 'hang' | 'malformed';

export interface JwksServer {
  /** http://127.0.0.1:PORT */
  readonly origin: string;
  /** The issuer whose discovery document this server publishes (origin + issuerPath). */
  readonly issuer: string;
  readonly jwksUri: string;
  setJwks(doc: unknown): void;
  setFault(fault: JwksFault): void;
  /** Requests received for a path (all paths when omitted), whatever the fault. */
  count(path?: string): number;
  resetCounts(): void;
  close(): Promise<void>;
}

export interface JwksServerOptions {
  readonly jwks?: unknown;
  /** Path part of the issuer, e.g. '/realms/test'. */
  readonly issuerPath?: string;
  /** The issuer the discovery document claims (default: the real one); for mismatch tests. */
  readonly discoveryIssuer?: string;
}

/** A real node:http JWKS + OIDC discovery server on loopback, with switchable faults. */
export async function startJwksServer(opts: JwksServerOptions = {}): Promise<JwksServer> {
  let jwks: unknown = opts.jwks ?? { keys: [] };
  let fault: JwksFault = 'none';
  const counts = new Map<string, number>();
  const sockets = new Set<Socket>();
  const issuerPath = opts.issuerPath ?? '';
  let origin = '';

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    if (fault === 'hang') return; // never answers; close() destroys the socket
    if (fault === 'status500') {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('boom');
      return;
    }
    if (fault === 'malformed') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": [ {"kty": "RSA",');
      return;
    }
    if (path === `${issuerPath}/.well-known/openid-configuration`) {
      const doc = { issuer: opts.discoveryIssuer ?? origin + issuerPath, jwks_uri: `${origin}/jwks.json` };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
      return;
    }
    if (path === '/jwks.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
      return;
    }
    res.writeHead(404).end();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    issuer: origin + issuerPath,
    jwksUri: `${origin}/jwks.json`,
    setJwks: (doc) => {
      jwks = doc;
    },
    setFault: (f) => {
      fault = f;
    },
    count: (path) => (path === undefined ? [...counts.values()].reduce((a, b) => a + b, 0) : (counts.get(path) ?? 0)),
    resetCounts: () => counts.clear(),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
