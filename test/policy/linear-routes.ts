import type { NormalizedRequest } from '../../src/model.js';
import { isCanonicalPath, type RouteSpec } from '../../src/policy/routes.js';

const SLASH = 0x2f;

/** `prefix` matches at segment boundaries: /api/orders matches /api/orders and /api/orders/1, not /api/ordersX. */
export function prefixMatcher(prefix: string): (path: string) => boolean {
  if (prefix.endsWith('/')) return (path) => path.startsWith(prefix);
  const len = prefix.length;
  return (path) => path.startsWith(prefix) && (path.length === len || path.charCodeAt(len) === SLASH);
}

/**
 * `*` matches exactly one non-empty segment, a trailing `**` zero or more segments
 * (so `/api/**` matches `/api`, `/api/` and `/api/a/b`). Walks the path without splitting it.
 */
export function patternMatcher(pattern: string): (path: string) => boolean {
  const segs = pattern.split('/').slice(1);
  return (path) => {
    let pos = 0; // index of the '/' that opens the next segment
    for (const seg of segs) {
      if (seg === '**') return true;
      if (pos >= path.length) return false;
      let end = path.indexOf('/', pos + 1);
      if (end === -1) end = path.length;
      const start = pos + 1;
      if (seg === '*') {
        if (end === start) return false;
      } else if (end - start !== seg.length || !path.startsWith(seg, start)) {
        return false;
      }
      pos = end;
    }
    return pos === path.length;
  };
}

function pathMatcher(spec: RouteSpec): (path: string) => boolean {
  if (spec.path !== undefined) {
    const exact = spec.path;
    return (path) => path === exact;
  }
  if (spec.prefix !== undefined) return prefixMatcher(spec.prefix);
  if (spec.pattern !== undefined) return patternMatcher(spec.pattern);
  throw new Error('route needs one of prefix, path, pattern');
}

/** Exact host, or `*.suffix` matching any non-empty subdomain (Envoy's suffix wildcard). */
export function hostMatcher(host: string | undefined): ((host: string) => boolean) | null {
  if (host === undefined) return null;
  const h = host.toLowerCase();
  if (h.startsWith('*.')) {
    const suffix = h.slice(1);
    return (reqHost) => reqHost.length > suffix.length && reqHost.endsWith(suffix);
  }
  return (reqHost) => reqHost === h;
}

function compileRoute(spec: RouteSpec): (req: NormalizedRequest) => boolean {
  const matchPath = pathMatcher(spec);
  const matchHost = hostMatcher(spec.host);
  const methods = spec.methods === undefined ? null : new Set(spec.methods);
  return (req) =>
    (methods === null || methods.has(req.method)) && (matchHost === null || matchHost(req.host)) && matchPath(req.path);
}

/**
 * The linear first-match scan the route index replaced, kept as the oracle the index is compared
 * with: first route in config order wins; a non-canonical path matches nothing.
 */
export function linearMatcher<R extends RouteSpec>(routes: readonly R[]): (req: NormalizedRequest) => R | undefined {
  const compiled = routes.map((r) => [r, compileRoute(r)] as const);
  return (req) => {
    if (!isCanonicalPath(req.path)) return undefined;
    for (const [route, matches] of compiled) if (matches(req)) return route;
    return undefined;
  };
}
