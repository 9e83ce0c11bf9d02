import type { NormalizedRequest } from '../model.js';

const SLASH = 0x2f;

export interface RouteSpec {
  readonly prefix?: string | undefined;
  readonly path?: string | undefined;
  readonly pattern?: string | undefined;
  readonly methods?: readonly string[] | undefined;
  readonly host?: string | undefined;
}

export interface CompiledRoute<R> {
  readonly resource: R;
  matches(req: NormalizedRequest): boolean;
}

const isHex = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

/**
 * True when `path` is in the form the normaliser produces. Anything else maps to no route (and so
 * not to default_resource either): a matcher fed an odd string must never match more than intended.
 * - `//`, `.` and `..` segments: a prefix would match a path the upstream resolves elsewhere.
 * - `..;x` / `.;x` segments: servlet containers strip `;params` and then resolve the dots.
 * - a percent-escape left after the one decode: an upstream that decodes again sees another path.
 * - backslash, `?`, `#`, control characters: parsers disagree on them.
 */
export function isCanonicalPath(path: string): boolean {
  const n = path.length;
  if (n === 0 || path.charCodeAt(0) !== SLASH) return false;
  let segStart = 1;
  let nameEnd = -1; // end of the segment before its first ';'
  for (let i = 1; i <= n; i++) {
    const c = i < n ? path.charCodeAt(i) : SLASH;
    if (c === SLASH) {
      if (i === segStart && i < n) return false;
      const end = nameEnd === -1 ? i : nameEnd;
      const len = end - segStart;
      if (
        (len === 1 && path.charCodeAt(segStart) === 0x2e) ||
        (len === 2 && path.charCodeAt(segStart) === 0x2e && path.charCodeAt(segStart + 1) === 0x2e)
      ) {
        return false;
      }
      segStart = i + 1;
      nameEnd = -1;
    } else if (c === 0x3b) {
      if (nameEnd === -1) nameEnd = i;
    } else if (c < 0x20 || c === 0x7f || c === 0x5c || c === 0x3f || c === 0x23) {
      return false;
    } else if (c === 0x25 && isHex(path.charCodeAt(i + 1)) && isHex(path.charCodeAt(i + 2))) {
      return false;
    }
  }
  return true;
}

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

export function compileRoute<R>(spec: RouteSpec, resource: R): CompiledRoute<R> {
  const matchPath = pathMatcher(spec);
  const matchHost = hostMatcher(spec.host);
  const methods = spec.methods === undefined ? null : new Set(spec.methods);
  return {
    resource,
    matches(req) {
      return (
        (methods === null || methods.has(req.method)) &&
        (matchHost === null || matchHost(req.host)) &&
        matchPath(req.path)
      );
    },
  };
}

/** First route in config order wins; a non-canonical path matches nothing. */
export function matchRoute<R>(routes: readonly CompiledRoute<R>[], req: NormalizedRequest): R | undefined {
  if (!isCanonicalPath(req.path)) return undefined;
  for (const route of routes) {
    if (route.matches(req)) return route.resource;
  }
  return undefined;
}
