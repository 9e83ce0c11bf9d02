import { hostname, userInfo } from 'node:os';
import {
  LIST_KINDS,
  parseBlockTarget,
  parseStoredScore,
  validateScore,
  validateTtl,
  validateUser,
  type KeySpace,
  type ListKind,
} from './keys.js';
import { pushAlert } from './remediation.js';
import type { DataClient } from './redis-conn.js';

/**
 * Admin writes, shared by RedisStateStore and the admin CLI so both write exactly the keys the
 * guides use. Inputs are validated before the first command, so a bad input writes nothing.
 * Every change is also recorded in security_alerts for audit.
 */
export interface AdminChange {
  readonly kind: ListKind;
  readonly id: string;
  readonly key: string;
  /** Absent for removals and keys without expiry. */
  readonly ttlS?: number;
  /** For removals: whether a key existed. */
  readonly existed?: boolean;
  readonly score?: number;
}

/** Who made a change, for the audit trail: the OS user and host of the process that wrote it. */
function actor(): { by_user: string; by_host: string } {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container running as an arbitrary uid): the uid still says who.
    user = `uid:${process.getuid?.() ?? '?'}`;
  }
  return { by_user: user, by_host: hostname() };
}

function audit(data: DataClient, keys: KeySpace, type: string, fields: Record<string, unknown>): Promise<void> {
  return pushAlert(data, keys, { type, ...fields, at: new Date().toISOString(), source: 'zt-authz-admin', ...actor() });
}

export async function adminSuspend(data: DataClient, keys: KeySpace, sub: string, ttlS: number, reason?: string): Promise<AdminChange> {
  const id = validateUser(sub);
  validateTtl(ttlS);
  const key = keys.key('suspended_user', id);
  await data.set(key, 'true', 'EX', ttlS);
  await audit(data, keys, 'admin_suspend', { user: id, ttl_s: ttlS, ...(reason === undefined ? {} : { reason }) });
  return { kind: 'suspended_user', id, key, ttlS };
}

export async function adminUnsuspend(data: DataClient, keys: KeySpace, sub: string): Promise<AdminChange> {
  const id = validateUser(sub);
  const key = keys.key('suspended_user', id);
  const n = await data.del(key);
  await audit(data, keys, 'admin_unsuspend', { user: id });
  return { kind: 'suspended_user', id, key, existed: n > 0 };
}

export async function adminBlock(data: DataClient, keys: KeySpace, target: string, ttlS: number): Promise<AdminChange> {
  const t = parseBlockTarget(target);
  validateTtl(ttlS);
  const key = keys.key(t.kind, t.id);
  await data.set(key, 'true', 'EX', ttlS);
  await audit(data, keys, 'admin_block', { target: t.id, ttl_s: ttlS });
  return { kind: t.kind, id: t.id, key, ttlS };
}

export async function adminUnblock(data: DataClient, keys: KeySpace, target: string): Promise<AdminChange> {
  const t = parseBlockTarget(target);
  const key = keys.key(t.kind, t.id);
  let n = await data.del(key);
  // Other tools may have written a non-canonical spelling (upper-case IPv6, uncompressed zeros).
  if (target !== t.id) n += await data.del(keys.key(t.kind, target));
  await audit(data, keys, 'admin_unblock', { target: t.id });
  return { kind: t.kind, id: t.id, key, existed: n > 0 };
}

export async function adminRisk(data: DataClient, keys: KeySpace, sub: string, score: number, ttlS?: number): Promise<AdminChange> {
  const id = validateUser(sub);
  validateScore(score);
  if (ttlS !== undefined) validateTtl(ttlS);
  const key = keys.key('user_risk', id);
  // One MULTI so no reader sees the new score with the old TTL (same key, so valid in a cluster too).
  const tx = data.multi().hset(key, 'score', String(score));
  if (ttlS === undefined) tx.persist(key);
  else tx.expire(key, ttlS);
  const res = await tx.exec();
  const failed = res?.find(([err]) => err !== null);
  if (res === null || failed !== undefined) throw failed?.[0] ?? new Error('MULTI aborted');
  await audit(data, keys, 'admin_risk', { user: id, score, ...(ttlS === undefined ? {} : { ttl_s: ttlS }) });
  return { kind: 'user_risk', id, key, score, ...(ttlS === undefined ? {} : { ttlS }) };
}

/** Clears a live risk score: the user is judged on the token's own score again. */
export async function adminUnrisk(data: DataClient, keys: KeySpace, sub: string): Promise<AdminChange> {
  const id = validateUser(sub);
  const key = keys.key('user_risk', id);
  const n = await data.del(key);
  await audit(data, keys, 'admin_unrisk', { user: id });
  return { kind: 'user_risk', id, key, existed: n > 0 };
}

export interface ListedEntry {
  readonly kind: ListKind;
  readonly id: string;
  /** -1: no expiry. */
  readonly ttlMs: number;
  readonly score?: number;
}

/** Reads every listed key; `scanNodes` yields one SCAN per master (one for standalone). */
export async function adminList(
  data: DataClient,
  keys: KeySpace,
  scan: (patterns: string[]) => Promise<string[]>,
): Promise<ListedEntry[]> {
  const found = await scan(scanPatterns(keys));
  const out: ListedEntry[] = [];
  await Promise.all(
    found.map(async (key) => {
      const p = keys.parse(key);
      if (p === undefined) return;
      const ttlMs = await data.pttl(key);
      if (ttlMs === -2) return;
      if (p.kind !== 'user_risk') {
        out.push({ kind: p.kind, id: p.id, ttlMs });
        return;
      }
      const score = await data.hget(key, 'score').catch(() => data.get(key));
      out.push({ kind: p.kind, id: p.id, ttlMs, score: parseStoredScore(score) });
    }),
  );
  return out.sort((a, b) => (a.kind === b.kind ? a.id.localeCompare(b.id) : a.kind.localeCompare(b.kind)));
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** One SCAN MATCH per family: the server filters, only our keys cross the wire. */
export function scanPatterns(keys: KeySpace): string[] {
  return LIST_KINDS.map((k) => `${escapeGlob(keys.prefix)}${k}:*`);
}
