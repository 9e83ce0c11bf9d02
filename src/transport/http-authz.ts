import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import type { Checker } from '../decision/checker.js';
import type { ClientIpSource, Decision, NormalizedRequest } from '../model.js';
import { inList } from '../normalize/cidr.js';
import { clientIp, normalizeIp } from '../normalize/client-ip.js';
import { normalizePath } from '../normalize/path.js';
import { REASON_HEADER } from '../response/deny-body.js';
import type { HttpResponder } from '../response/http.js';

export interface HttpAuthzOptions {
  readonly prefix: string;
  readonly trustedProxies: BlockList;
  readonly checker: () => Checker;
  readonly responder: () => HttpResponder;
  readonly decisionTimeoutMs: number;
}

/**
 * The auth-subrequest form of Check: Envoy `http_service` (original request re-sent under a path
 * prefix), nginx `auth_request`, Traefik ForwardAuth and Caddy `forward_auth` (original request
 * described in X-Original-* / X-Forwarded-* headers). Those headers are believed only from
 * configured proxies; from anyone else they are ignored and the request itself is judged.
 */
export function handleHttpAuthz(o: HttpAuthzOptions, req: IncomingMessage, res: ServerResponse): void {
  let normalized: NormalizedRequest;
  try {
    normalized = describe(o, req);
  } catch (err) {
    send(o, res, o.checker().invalid((err as Error).message));
    return;
  }
  const result = o.checker().check(normalized, Date.now() + o.decisionTimeoutMs);
  if (result instanceof Promise) result.then((d) => send(o, res, d), () => send(o, res, o.checker().failed('check rejected')));
  else send(o, res, result);
}

/**
 * Writes the decision. A responder that throws inside a promise callback would otherwise leave
 * the subrequest open until the proxy times out; the answer is then a bare 500, never silence.
 */
function send(o: HttpAuthzOptions, res: ServerResponse, d: Decision): void {
  try {
    o.responder().write(res, d);
  } catch {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json', [REASON_HEADER]: 'internal_error' });
    res.end('{"error":"internal_error"}');
  }
}

function describe(o: HttpAuthzOptions, req: IncomingMessage): NormalizedRequest {
  const headers = joinHeaders(req);
  const peer = normalizeIp(req.socket.remoteAddress ?? '');
  const trusted = peer !== '' && inList(o.trustedProxies, peer);
  const url = req.url ?? '/';

  let method = (req.method ?? 'GET').toUpperCase();
  let target = url.startsWith(o.prefix) ? url.slice(o.prefix.length) || '/' : url;
  let host = headers.host ?? '';
  let scheme = 'http';
  let ip = peer;
  let ipSource: ClientIpSource = 'peer';
  if (trusted) {
    method = (headers['x-original-method'] ?? headers['x-forwarded-method'] ?? method).toUpperCase();
    target = headers['x-original-uri'] ?? headers['x-forwarded-uri'] ?? target;
    host = headers['x-forwarded-host'] ?? host;
    scheme = headers['x-forwarded-proto'] ?? scheme;
    // The proxy appends the address it saw as the right-most x-forwarded-for entry (nginx
    // $proxy_add_x_forwarded_for); X-Real-IP is nginx's single-value form.
    const real = headers['x-real-ip'];
    const named = real ? normalizeIp(real) : clientIp('', headers['x-forwarded-for'], 1);
    ip = named || peer;
    ipSource = named !== '' ? 'forwarded' : 'proxy';
  }
  const split = normalizePath(target);
  return {
    method,
    path: split.path,
    rawPath: target,
    query: split.query,
    host: host.toLowerCase().replace(/:\d+$/, ''),
    scheme,
    headers,
    clientIp: ip,
    clientIpSource: ipSource,
    principal: '',
    contextExtensions: {},
    requestId: headers['x-request-id'] ?? '',
  };
}

/**
 * Node keeps only the first of duplicated Authorization headers; headersDistinct keeps them all,
 * and joining with "," makes a duplicate visible exactly as Envoy presents it over gRPC.
 */
function joinHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  const distinct = req.headersDistinct;
  for (const key of Object.keys(distinct)) {
    const values = distinct[key];
    if (values) out[key] = values.length === 1 ? values[0]! : values.join(',');
  }
  return out;
}
