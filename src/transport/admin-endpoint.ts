import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../observability/logger.js';
import { normalizeIp } from '../normalize/client-ip.js';
import { parseBlockTarget, StateInputError } from '../state/keys.js';

export const ADMIN_UNBLOCK_PATH = '/admin/unblock';
/** Environment variable holding the bearer token that admin calls must present. */
export const ADMIN_TOKEN_ENV = 'ZT_AUTHZ_ADMIN_TOKEN';
const MIN_TOKEN_CHARS = 32;
const MAX_BODY_BYTES = 1024;

export interface AdminOptions {
  /** Lifts a block on the running store (memory or Redis). */
  readonly unblock: (target: string) => Promise<void>;
  readonly logger: Logger;
  /** From ADMIN_TOKEN_ENV; when unset only loopback callers on a loopback listener are served. */
  readonly token: string | undefined;
}

/**
 * The admin endpoint is on only when mutation cannot come from the network unauthenticated: either
 * a token is configured, or the HTTP listener is bound to loopback (or a unix socket). Returns why
 * it is off, or undefined when it is on. A token shorter than MIN_TOKEN_CHARS is a startup error.
 */
export function adminRefusal(listenAddress: string, token: string | undefined): string | undefined {
  if (token !== undefined) {
    if (token.length < MIN_TOKEN_CHARS) throw new Error(`${ADMIN_TOKEN_ENV} must be at least ${MIN_TOKEN_CHARS} characters`);
    return undefined;
  }
  if (listenAddress.startsWith('unix:')) return undefined;
  const host = listenAddress.slice(0, listenAddress.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  if (isLoopback(normalizeIp(host))) return undefined;
  return `the HTTP listener ${listenAddress} is not loopback and ${ADMIN_TOKEN_ENV} is not set`;
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.');
}

/** A Host a browser could only send when the page itself is on loopback: defeats DNS rebinding. */
function loopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
  return name === 'localhost' || isLoopback(normalizeIp(name));
}

function bearerMatches(header: string | undefined, token: string): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7));
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

function reply(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}

/**
 * POST /admin/unblock {"target":"<ip|cidr>"}: lifts an IP or CIDR block (auto-remediation's or an
 * operator's) on whatever backend the server runs. Browsers cannot reach it from another origin: it
 * wants `content-type: application/json` (a preflight nobody answers) and refuses any Origin header.
 */
export function handleAdmin(o: AdminOptions, req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'POST' }).end();
    return;
  }
  const peer = normalizeIp(req.socket.remoteAddress ?? '');
  const authorized = o.token !== undefined ? bearerMatches(req.headers.authorization, o.token) : isLoopback(peer) && loopbackHost(req.headers.host);
  if (!authorized) {
    o.logger.warn({ peer }, 'admin: refused an unauthorized call');
    reply(res, o.token !== undefined ? 401 : 403, { error: 'forbidden' });
    return;
  }
  if (req.headers.origin !== undefined || !/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
    reply(res, 415, { error: 'expected content-type application/json and no Origin' });
    return;
  }
  let size = 0;
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_BODY_BYTES) {
      reply(res, 413, { error: 'body too large' });
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (res.headersSent) return;
    let target: unknown;
    try {
      target = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { target?: unknown }).target;
    } catch {
      target = undefined;
    }
    if (typeof target !== 'string') {
      reply(res, 400, { error: 'expected {"target":"<ip|cidr>"}' });
      return;
    }
    let id: string;
    try {
      id = parseBlockTarget(target).id;
    } catch (err) {
      reply(res, 400, { error: (err as Error).message });
      return;
    }
    o.unblock(target).then(
      () => {
        o.logger.warn({ target: id, peer }, 'admin: block lifted');
        reply(res, 200, { unblocked: id });
      },
      (err: unknown) => {
        const bad = err instanceof StateInputError;
        if (!bad) o.logger.error({ err, target }, 'admin: unblock failed');
        reply(res, bad ? 400 : 503, { error: bad ? (err as Error).message : 'state backend error' });
      },
    );
  });
}
