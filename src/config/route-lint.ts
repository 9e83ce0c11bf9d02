import type { PolicyConfig } from './schema/policy.js';

type Route = PolicyConfig['routes'][number];

/**
 * Routes are first-match: a route that an earlier one covers entirely never decides anything, which
 * is almost always a policy mistake (the later, usually narrower, rule was meant to apply). Only
 * coverage that is certain is reported, so a legitimate policy is never refused.
 */
export function routeErrors(routes: readonly Route[]): string[] {
  const errors: string[] = [];
  routes.forEach((b, j) => {
    for (let i = 0; i < j; i++) {
      const a = routes[i]!;
      if (!covers(a, b)) continue;
      const what = sameMatch(a, b) ? 'duplicates' : 'can never match: it is shadowed by';
      errors.push(`policy.routes.${j}: ${describe(b)} ${what} policy.routes.${i} (${describe(a)}), which comes first`);
      break;
    }
  });
  return errors;
}

function describe(r: Route): string {
  const match = r.prefix !== undefined ? `prefix ${r.prefix}` : r.path !== undefined ? `path ${r.path}` : `pattern ${r.pattern}`;
  return [match, r.methods ? `methods ${r.methods.join(',')}` : '', r.host ? `host ${r.host}` : '', `→ ${r.resource}`].filter(Boolean).join(' ');
}

function sameMatch(a: Route, b: Route): boolean {
  const set = (m?: readonly string[]) => (m ? [...new Set(m)].sort().join(',') : '*');
  return a.prefix === b.prefix && a.path === b.path && a.pattern === b.pattern && a.host?.toLowerCase() === b.host?.toLowerCase() && set(a.methods) === set(b.methods);
}

function covers(a: Route, b: Route): boolean {
  if (a.methods && (!b.methods || !b.methods.every((m) => a.methods!.includes(m)))) return false;
  if (a.host !== undefined && (b.host === undefined || !hostCovers(a.host.toLowerCase(), b.host.toLowerCase()))) return false;
  return pathCovers(a, b);
}

function hostCovers(a: string, b: string): boolean {
  if (a === b) return true;
  if (!a.startsWith('*.')) return false;
  const suffix = a.slice(1); // ".example.com"
  return b.endsWith(suffix) && b.length > suffix.length && (!b.startsWith('*.') || b.slice(1).endsWith(suffix));
}

/** Same semantics as the route matcher: a prefix matches at segment boundaries. */
function prefixMatches(prefix: string, path: string): boolean {
  if (prefix.endsWith('/')) return path.startsWith(prefix);
  return path.startsWith(prefix) && (path.length === prefix.length || path[prefix.length] === '/');
}

function patternMatches(pattern: string, path: string): boolean {
  const segs = pattern.split('/').slice(1);
  const parts = path.split('/').slice(1);
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    if (s === '**') return true;
    const p = parts[i];
    if (p === undefined) return false;
    if (s === '*' ? p === '' : s !== p) return false;
  }
  return parts.length === segs.length;
}

function matches(a: Route, path: string): boolean {
  if (a.prefix !== undefined) return prefixMatches(a.prefix, path);
  if (a.path !== undefined) return a.path === path;
  return patternMatches(a.pattern!, path);
}

function pathCovers(a: Route, b: Route): boolean {
  if (b.path !== undefined) return matches(a, b.path);
  if (a.path !== undefined) return false; // an exact path never covers a set of paths
  if (b.prefix !== undefined) {
    // b matches b.prefix and everything below it.
    if (a.prefix !== undefined) return prefixMatches(a.prefix, b.prefix) && (!a.prefix.endsWith('/') || b.prefix.startsWith(a.prefix));
    return a.pattern!.endsWith('/**') && patternMatches(a.pattern!, b.prefix.replace(/\/$/, '') || '/');
  }
  // b is a pattern.
  if (a.pattern !== undefined) return a.pattern === b.pattern || a.pattern === '/**';
  if (a.prefix === '/') return true;
  const segs = b.pattern!.split('/').slice(1);
  const firstWild = segs.findIndex((s) => s.includes('*'));
  const head = '/' + segs.slice(0, firstWild).join('/');
  // Every path b matches starts with `head` plus at least one more segment unless b's wildcard is `**`.
  if (a.prefix!.endsWith('/')) return segs[firstWild] !== '**' && (head + '/').startsWith(a.prefix!);
  return head !== '/' && prefixMatches(a.prefix!, head);
}
