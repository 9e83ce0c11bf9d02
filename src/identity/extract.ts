import type { NormalizedRequest } from '../model.js';
import type { TokenExtraction } from './types.js';

export interface TokenLocation {
  readonly header: string;
  /** '' means the whole header value is the token. */
  readonly scheme: string;
  /** `${scheme} `: the exact form nearly every client sends, checked first without allocating. */
  readonly schemeSp?: string;
}

const NONE: TokenExtraction = { kind: 'none' };

/** Distinct header/scheme pairs in issuer order, computed once at construction. */
export function tokenLocations(issuers: readonly TokenLocation[]): TokenLocation[] {
  const seen = new Set<string>();
  const out: TokenLocation[] = [];
  for (const { header, scheme } of issuers) {
    const id = `${header}\n${scheme.toLowerCase()}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ header, scheme, schemeSp: scheme === '' ? '' : `${scheme} ` });
  }
  return out;
}

/**
 * Returns the token of the first location whose header is present. A header that carries a
 * different scheme (e.g. `Basic`) is not ours and is skipped; one that carries ours but is
 * ambiguous is malformed rather than skipped, so a confusing request never falls through to a
 * more permissive path.
 */
export function extractToken(req: NormalizedRequest, locations: readonly TokenLocation[]): TokenExtraction {
  for (const loc of locations) {
    const value = req.headers[loc.header];
    if (value === undefined || value === '') continue;
    if (loc.schemeSp && value.startsWith(loc.schemeSp)) {
      // Hot path: no regex over a ~1 KB token. Other whitespace or stray characters cannot match a
      // cached (verified, canonical) token and are refused by the JWS parser before any crypto.
      const token = value.slice(loc.schemeSp.length);
      if (token.indexOf(',') !== -1) return { kind: 'malformed', detail: `several ${loc.header} headers` };
      if (token === '' || token.charCodeAt(0) === 0x20 || token.indexOf(' ') !== -1) {
        return { kind: 'malformed', detail: `${loc.header} must be "${loc.scheme} <token>" with one space` };
      }
      return { kind: 'token', token };
    }
    // Envoy joins repeated headers with ','; a token never contains one.
    if (value.includes(',')) return { kind: 'malformed', detail: `several ${loc.header} headers` };
    if (loc.scheme === '') {
      if (/\s/.test(value)) return { kind: 'malformed', detail: `whitespace in ${loc.header}` };
      return { kind: 'token', token: value };
    }
    const prefixLen = loc.scheme.length;
    const prefix = value.slice(0, prefixLen);
    if (prefix.toLowerCase() !== loc.scheme.toLowerCase()) {
      if (/^\s/.test(value)) return { kind: 'malformed', detail: `leading whitespace in ${loc.header}` };
      continue;
    }
    const rest = value.slice(prefixLen);
    if (rest === '') return { kind: 'malformed', detail: `${loc.scheme} without a token` };
    if (!/^\s/.test(rest)) {
      // "Bearerxyz": not our scheme followed by a separator; another scheme name that merely starts alike.
      continue;
    }
    if (rest.charCodeAt(0) !== 0x20 || rest.length < 2 || /\s/.test(rest.slice(1))) {
      return { kind: 'malformed', detail: `${loc.header} must be "${loc.scheme} <token>" with one space` };
    }
    return { kind: 'token', token: rest.slice(1) };
  }
  return NONE;
}
