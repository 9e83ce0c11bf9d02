import type { NormalizedRequest } from '../model.js';
import type { WireCheckRequest, WireHeaderValue } from '../wire/check-request.js';
import { clientIp, normalizeIp } from './client-ip.js';
import { normalizePath } from './path.js';

export class RequestError extends Error {}

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

export interface NormalizeOptions {
  readonly trustedXffHops: number;
}

/**
 * A request as a transport read it, before normalisation: `method`, `host` (an authority, with or
 * without port, any case, maybe with a trailing dot) and `query` (a separately sent one, used when
 * the target carries none) are raw, `path` is unset; `clientIp` is already chosen by the
 * transport's trust rule and passed through normalizeIp. normalizeRequest fills it in place: the
 * hot path then allocates the one object it returns.
 */
export type RequestDraft = { -readonly [K in keyof NormalizedRequest]: NormalizedRequest[K] };

/**
 * The one normalisation of method, path and host for every transport, so that a rule keyed on
 * any of them matches alike in gRPC and HTTP mode. Throws RequestError (→ request_invalid).
 */
export function normalizeRequest(r: RequestDraft): NormalizedRequest {
  r.method = r.method.toUpperCase();
  if (!r.method) throw new RequestError('method missing');
  if (!r.rawPath) throw new RequestError('path missing');
  let split;
  try {
    split = normalizePath(r.rawPath);
  } catch (err) {
    throw new RequestError(`path: ${(err as Error).message}`);
  }
  r.path = split.path;
  // Envoy leaves `query` empty and keeps the query in `path`; honour `query` anyway for other callers.
  r.query = split.query || r.query;
  r.host = hostOnly(r.host);
  return r;
}

/** CheckRequest → NormalizedRequest. Throws RequestError (→ request_invalid) for unusable input. */
export function normalizeCheckRequest(msg: WireCheckRequest, opts: NormalizeOptions): NormalizedRequest {
  const attrs = msg.attributes;
  const http = attrs?.request?.http;
  if (!attrs || !http) throw new RequestError('attributes.request.http missing');

  const headers = headerObject(http.headers, http.header_map?.headers);
  const src = attrs.source;
  const sourceAddress = src?.address?.socket_address?.address ?? '';
  // With trusted hops the peer is a proxy: an address only counts as the client's when forwarded.
  const hops = opts.trustedXffHops;
  const forwarded = hops > 0 ? clientIp('', headers['x-forwarded-for'], hops) : '';
  return normalizeRequest({
    method: http.method || headers[':method'] || '',
    path: '',
    rawPath: http.path || headers[':path'] || '',
    query: http.query || '',
    host: http.host || headers[':authority'] || headers.host || '',
    scheme: http.scheme || headers[':scheme'] || '',
    headers,
    clientIp: forwarded || normalizeIp(sourceAddress),
    clientIpSource: forwarded !== '' ? 'forwarded' : hops > 0 ? 'proxy' : 'peer',
    principal: src?.principal ?? '',
    contextExtensions: attrs.context_extensions ?? EMPTY,
    requestId: http.id || headers['x-request-id'] || '',
  });
}

/**
 * Envoy sends either the `headers` map or, with `encode_raw_headers`, `header_map` whose values
 * may be bytes. Repeated keys in header_map are joined with "," exactly as Envoy joins the map form,
 * so a duplicated Authorization header is visible as such downstream.
 */
function headerObject(map: Record<string, string> | undefined, list: WireHeaderValue[] | undefined): Record<string, string> {
  if (map && (!list || list.length === 0)) return map;
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (map) for (const k of Object.keys(map)) out[k.toLowerCase()] = map[k]!;
  if (list) {
    for (const h of list) {
      if (!h.key) continue;
      const key = h.key.toLowerCase();
      const value = h.value ? h.value : h.raw_value ? h.raw_value.toString('latin1') : '';
      const prev = out[key];
      out[key] = prev === undefined ? value : `${prev},${value}`;
    }
  }
  return out;
}

/** Lower case, no port, no trailing dot; an IPv6 literal keeps its brackets. */
export function hostOnly(authority: string): string {
  if (isBareHostName(authority)) return authority;
  let host = authority.toLowerCase();
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    return close === -1 ? host : host.slice(0, close + 1);
  }
  const colon = host.lastIndexOf(':');
  if (colon !== -1 && host.indexOf(':') === colon) host = host.slice(0, colon);
  // `app.example.com.` is the same host as `app.example.com`; a trailing dot must not dodge host rules.
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host;
}

/** Lower-case letters, digits, '-' and '.', not ending in '.': what Envoy nearly always sends, already normal. */
function isBareHostName(s: string): boolean {
  const n = s.length;
  if (n === 0 || s.charCodeAt(n - 1) === 0x2e) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e)) return false;
  }
  return true;
}
