import type { ClientIpSource, NormalizedRequest } from '../model.js';
import { inList, type CidrList } from './cidr.js';
import { clientIp, normalizeIp } from './client-ip.js';
import { normalizeRequest } from './request.js';

/** An HTTP auth subrequest as the transport received it (headers joined as Envoy joins them). */
export interface AuthSubrequest {
  readonly method: string;
  /** The request target with the authz prefix already removed. */
  readonly target: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The TCP peer's address. */
  readonly peer: string;
}

/**
 * Auth subrequest → NormalizedRequest, through the same normalizeRequest as a CheckRequest. The
 * X-Original-* / X-Forwarded-* headers that describe the original request are believed only from
 * `trustedProxies`; from anyone else they are ignored and the subrequest itself is judged.
 */
export function normalizeAuthSubrequest(sub: AuthSubrequest, trustedProxies: CidrList): NormalizedRequest {
  const headers = sub.headers;
  const peer = normalizeIp(sub.peer);
  const trusted = peer !== '' && inList(trustedProxies, peer);
  let method = sub.method || 'GET';
  let target = sub.target;
  let authority = headers.host ?? '';
  let scheme = 'http';
  let ip = peer;
  let ipSource: ClientIpSource = 'peer';
  if (trusted) {
    method = headers['x-original-method'] ?? headers['x-forwarded-method'] ?? method;
    target = headers['x-original-uri'] ?? headers['x-forwarded-uri'] ?? target;
    authority = headers['x-forwarded-host'] ?? authority;
    scheme = headers['x-forwarded-proto'] ?? scheme;
    // The proxy appends the address it saw as the right-most x-forwarded-for entry (nginx
    // $proxy_add_x_forwarded_for); X-Real-IP is nginx's single-value form.
    const real = headers['x-real-ip'];
    const named = real ? normalizeIp(real) : clientIp('', headers['x-forwarded-for'], 1);
    ip = named || peer;
    // A trusted proxy that names no client is judged as itself, but never counted as one client.
    ipSource = named !== '' ? 'forwarded' : 'proxy';
  }
  return normalizeRequest({
    method,
    path: '',
    rawPath: target,
    query: '',
    host: authority,
    scheme,
    headers,
    clientIp: ip,
    clientIpSource: ipSource,
    principal: '',
    contextExtensions: {},
    requestId: headers['x-request-id'] ?? '',
  });
}
