import { compileClaimPath, type ClaimPath } from '../config/claim-path.js';
import type { Identity } from '../model.js';

/** Envoy's default max request header size is 60 KiB in all; one claim header gets a small share. */
export const MAX_CLAIM_HEADER_BYTES = 4096;

export type ClaimHeaders = readonly (readonly [string, string])[];

const NONE: ClaimHeaders = Object.freeze([]);

/**
 * `policy.headers.claims`: the values an allow sends upstream, like Envoy jwt_authn's
 * claim_to_headers. Strings, numbers and booleans only; CR, LF or NUL (header injection) and
 * oversized values are not sent. Built once per verified token and policy version: the pairs are
 * kept in a WeakMap on the identity object the token cache holds.
 */
export function compileClaimHeaders(spec: Readonly<Record<string, ClaimPath>>): ((identity: Identity) => ClaimHeaders) | null {
  const entries = Object.entries(spec).map(([header, path]) => [header, compileClaimPath(path)] as const);
  if (entries.length === 0) return null;
  const cache = new WeakMap<Identity, ClaimHeaders>();
  return (identity) => {
    let pairs = cache.get(identity);
    if (pairs === undefined) {
      const out: [string, string][] = [];
      for (const [header, get] of entries) {
        const value = headerValue(get(identity.claims));
        if (value !== undefined) out.push([header, value]);
      }
      pairs = out.length === 0 ? NONE : Object.freeze(out);
      cache.set(identity, pairs);
    }
    return pairs;
  };
}

function headerValue(v: unknown): string | undefined {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' && Number.isFinite(v)) s = String(v);
  else if (typeof v === 'boolean') s = v ? 'true' : 'false';
  else return undefined;
  if (/[\r\n\0]/.test(s) || Buffer.byteLength(s) > MAX_CLAIM_HEADER_BYTES) return undefined;
  return s;
}
