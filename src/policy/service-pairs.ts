const SPIFFE = 'spiffe://';

export type PrincipalMatcher = (principal: string) => boolean;

/** Segments after `spiffe://`; `*` matches one non-empty segment, other segments match exactly. */
function segmentMatcher(segs: readonly string[]): PrincipalMatcher {
  return (principal) => {
    if (!principal.startsWith(SPIFFE)) return false;
    let start = SPIFFE.length;
    for (let i = 0; i < segs.length; i++) {
      if (start > principal.length) return false;
      let end = principal.indexOf('/', start);
      if (end === -1) end = principal.length;
      const seg = segs[i]!;
      if (end === start) return false;
      if (seg !== '*' && (end - start !== seg.length || !principal.startsWith(seg, start))) return false;
      start = end + 1;
    }
    return start === principal.length + 1;
  };
}

/**
 * `from` is a SPIFFE ID pattern (`spiffe://cluster.local/ns/*\/sa/web`) or a bare Kubernetes
 * service-account name, which stands for `spiffe://*\/ns/*\/sa/<name>` in any trust domain and
 * namespace. A principal that is not a SPIFFE ID matches neither.
 */
export function compileFrom(from: string): PrincipalMatcher {
  if (from.startsWith(SPIFFE)) return segmentMatcher(from.slice(SPIFFE.length).split('/'));
  return segmentMatcher(['*', 'ns', '*', 'sa', from]);
}
