const SLASH = 0x2f;

export interface RouteSpec {
  readonly prefix?: string | undefined;
  readonly path?: string | undefined;
  readonly pattern?: string | undefined;
  readonly methods?: readonly string[] | undefined;
  readonly host?: string | undefined;
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
