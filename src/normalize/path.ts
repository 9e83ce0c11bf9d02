/**
 * Envoy sends `:path` raw: undecoded, with the query. Matching must see one canonical form, or
 * `//admin`, `/api/..%2Fadmin` and friends slip past prefix rules (OPA-Envoy GHSA-9f29-v6mm-pw6w).
 * The path is percent-decoded exactly once (so `%252F` stays a literal `%2F`) and then dot-segments
 * and empty segments are collapsed.
 */
export interface SplitPath {
  readonly path: string;
  readonly query: string;
}

const NEEDS_WORK = /%|\/\/|\/\.|\\/;
// Control characters (incl. NUL) have no business in a path and are a classic smuggling vector.
const CONTROL = /[\u0000-\u001f\u007f]/;

export class PathError extends Error {}

export function normalizePath(raw: string): SplitPath {
  let end = raw.length;
  let query = '';
  const q = raw.indexOf('?');
  const h = raw.indexOf('#');
  if (h !== -1) end = h;
  if (q !== -1 && q < end) {
    query = raw.slice(q + 1, end);
    end = q;
  }
  let path = end === raw.length ? raw : raw.slice(0, end);
  if (path === '' || path[0] !== '/') {
    // Absolute-form targets (`http://host/x`) and `*` are not origin-form paths.
    if (path === '*') return { path: '/', query };
    throw new PathError('path must start with "/"');
  }
  if (!NEEDS_WORK.test(path)) return { path, query };

  if (path.includes('%')) {
    try {
      path = decodeURIComponent(path);
    } catch {
      throw new PathError('invalid percent-encoding');
    }
  }
  if (CONTROL.test(path)) throw new PathError('control character in path');
  // Some upstreams (IIS, some Java containers) treat backslash as a separator.
  path = path.replaceAll('\\', '/');
  return { path: collapse(path), query };
}

function collapse(path: string): string {
  const out: string[] = [];
  const segments = path.split('/');
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '' || s === '.') continue;
    if (s === '..') {
      out.pop();
      continue;
    }
    out.push(s);
  }
  const trailing = path.endsWith('/') && out.length > 0 ? '/' : '';
  return '/' + out.join('/') + trailing;
}
