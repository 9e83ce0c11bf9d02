import { z } from 'zod';

/**
 * A claim named in config: a dotted string (`realm_access.roles`) or a list of segments for names
 * that hold dots or slashes (`[resource_access, shop-api, roles]`, `["https://shop.example/roles"]`).
 * Either form becomes a list of segments at parse time.
 */
export const dottedClaimPath = z
  .string()
  .min(1)
  .refine((s) => s.split('.').every((seg) => seg.length > 0), { message: 'a dotted claim path has no empty segments' })
  .transform((s) => s.split('.'));

export const claimPath = z.union([dottedClaimPath, z.array(z.string().min(1)).min(1)]);

export type ClaimPath = readonly string[];

/** The path as config would spell it, for details and errors. */
export function describeClaimPath(path: ClaimPath): string {
  return path.some((s) => s.includes('.')) ? JSON.stringify(path) : path.join('.');
}

/**
 * A getter for the claim at `path`. Claims come from JSON.parse: only own properties of plain
 * objects are followed (never arrays, never inherited names such as `constructor`).
 */
export function compileClaimPath(path: ClaimPath): (claims: object) => unknown {
  if (path.length === 1) {
    const key = path[0]!;
    return (claims) => (Object.hasOwn(claims, key) ? (claims as Record<string, unknown>)[key] : undefined);
  }
  const segs = [...path];
  return (claims) => {
    let v: unknown = claims;
    for (const seg of segs) {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.hasOwn(v, seg)) return undefined;
      v = (v as Record<string, unknown>)[seg];
    }
    return v;
  };
}
