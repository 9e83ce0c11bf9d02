import type { RequireConfig } from '../config/schema/policy.js';
import type { Reason } from '../reasons.js';

/**
 * A resource's `require` and its route's, merged: every `*_all` list is a union, and each `*_any`
 * list stays a group of its own that must be met (a route's any-list adds to its resource's, it
 * never replaces it).
 */
export interface CompiledRequirement {
  readonly rolesAll: readonly string[];
  readonly rolesAny: readonly (readonly string[])[];
  readonly scopesAll: readonly string[];
  readonly scopesAny: readonly (readonly string[])[];
  /** RFC 6750 §3.1 challenges, built once: for scopes_all, then one per scopes_any group. */
  readonly challengeAll: string;
  readonly challengeAny: readonly string[];
}

export interface RequirementFailure {
  readonly reason: Extract<Reason, 'role_missing' | 'scope_insufficient'>;
  readonly detail: string;
  readonly challenge?: string;
}

export function compileRequirement(parts: readonly (RequireConfig | undefined)[]): CompiledRequirement | null {
  const rolesAll = new Set<string>();
  const scopesAll = new Set<string>();
  const rolesAny: string[][] = [];
  const scopesAny: string[][] = [];
  let any = false;
  for (const p of parts) {
    if (p === undefined) continue;
    any = true;
    p.roles_all?.forEach((r) => rolesAll.add(r));
    p.scopes_all?.forEach((s) => scopesAll.add(s));
    if (p.roles_any) rolesAny.push([...p.roles_any]);
    if (p.scopes_any) scopesAny.push([...p.scopes_any]);
  }
  if (!any) return null;
  return {
    rolesAll: [...rolesAll],
    rolesAny,
    scopesAll: [...scopesAll],
    scopesAny,
    challengeAll: insufficientScope([...scopesAll]),
    challengeAny: scopesAny.map(insufficientScope),
  };
}

/** Scope tokens are checked by the schema (RFC 6749 scope-token), so they need no escaping here. */
function insufficientScope(scopes: readonly string[]): string {
  return `Bearer realm="zt-authz", error="insufficient_scope", error_description="scope_insufficient", scope="${scopes.join(' ')}"`;
}

/** Roles first, then scopes; undefined when the caller's roles and scopes meet the requirement. */
export function unmet(req: CompiledRequirement, roles: readonly string[], scopes: readonly string[]): RequirementFailure | undefined {
  for (const r of req.rolesAll) {
    if (!roles.includes(r)) return { reason: 'role_missing', detail: `role ${r} required (roles_all)` };
  }
  for (const group of req.rolesAny) {
    if (!group.some((r) => roles.includes(r))) return { reason: 'role_missing', detail: `one of the roles ${group.join(', ')} required (roles_any)` };
  }
  for (const s of req.scopesAll) {
    if (!scopes.includes(s)) return { reason: 'scope_insufficient', detail: `scope ${s} required (scopes_all)`, challenge: req.challengeAll };
  }
  for (let i = 0; i < req.scopesAny.length; i++) {
    const group = req.scopesAny[i]!;
    if (!group.some((s) => scopes.includes(s))) {
      return { reason: 'scope_insufficient', detail: `one of the scopes ${group.join(', ')} required (scopes_any)`, challenge: req.challengeAny[i]! };
    }
  }
  return undefined;
}
