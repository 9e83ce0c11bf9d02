import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DecisionPipeline } from '../decision/pipeline.js';
import type { Decision } from '../model.js';
import { REASON_HEADER } from '../response/deny-body.js';
import type { HttpResponder } from '../response/http.js';

/** What one subrequest is served by: both from one config (see App's Active). */
export interface HttpServing {
  readonly pipeline: DecisionPipeline;
  readonly http: HttpResponder;
}

export interface HttpAuthzOptions {
  readonly prefix: string;
  /** Taken once per subrequest, on entry. */
  readonly serving: () => HttpServing;
  readonly decisionTimeoutMs: number;
}

/**
 * The auth-subrequest form of Check: Envoy `http_service` (original request re-sent under a path
 * prefix), nginx `auth_request`, Traefik ForwardAuth and Caddy `forward_auth` (original request
 * described in X-Original-* / X-Forwarded-* headers, believed only from trusted proxies: see
 * normalizeAuthSubrequest). The request is normalised exactly as a gRPC CheckRequest is.
 */
export function handleHttpAuthz(o: HttpAuthzOptions, req: IncomingMessage, res: ServerResponse): void {
  const serving = o.serving();
  const url = req.url ?? '/';
  const sub = {
    method: req.method ?? 'GET',
    target: url.startsWith(o.prefix) ? url.slice(o.prefix.length) || '/' : url,
    headers: joinHeaders(req),
    peer: req.socket.remoteAddress ?? '',
  };
  const result = serving.pipeline.decideSubrequest(sub, Date.now() + o.decisionTimeoutMs);
  if (result instanceof Promise) result.then((d) => send(serving, res, d), () => send(serving, res, serving.pipeline.failed('check rejected')));
  else send(serving, res, result);
}

/**
 * Writes the decision. A responder that throws inside a promise callback would otherwise leave
 * the subrequest open until the proxy times out; the answer is then a bare 500, never silence.
 */
function send(serving: HttpServing, res: ServerResponse, d: Decision): void {
  try {
    serving.http.write(res, d);
  } catch {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json', [REASON_HEADER]: 'internal_error' });
    res.end('{"error":"internal_error"}');
  }
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
