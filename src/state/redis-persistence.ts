import type { Cluster, Redis } from 'ioredis';
import type { DataClient } from './redis-conn.js';

/** Weakest first: a cluster is as durable as its weakest master. */
export const PERSISTENCE_MODES = ['none', 'unknown', 'rdb', 'aof'] as const;
export type PersistenceMode = (typeof PERSISTENCE_MODES)[number];

/**
 * How one Redis node persists. AOF shows in INFO persistence (`aof_enabled:1`). Whether RDB
 * snapshots are configured does not: that needs `CONFIG GET save`, which a least-privilege ACL user
 * may be refused (and should be: CONFIG GET also reads secrets). Then, with AOF off, 'unknown'.
 */
export async function persistenceOf(node: Redis, configGet: boolean): Promise<PersistenceMode> {
  let info: string;
  try {
    info = await node.info('persistence');
  } catch (err) {
    return refused(err);
  }
  if (/^aof_enabled:1\r?$/m.test(info)) return 'aof';
  if (!configGet) return 'unknown';
  try {
    const reply = (await node.config('GET', 'save')) as unknown;
    const save = Array.isArray(reply) ? reply[1] : undefined;
    if (typeof save !== 'string') return 'unknown';
    return save.trim() === '' ? 'none' : 'rdb';
  } catch (err) {
    return refused(err);
  }
}

/** A refused command is an answer ('unknown'); a timeout or lost connection is not: rethrown, to retry. */
function refused(err: unknown): PersistenceMode {
  if (/NOPERM|unknown command|unknown subcommand/i.test((err as Error).message)) return 'unknown';
  throw err;
}

/** The weakest mode over every master (one node for standalone and Sentinel). */
export async function dataPersistence(data: DataClient, cluster: boolean, configGet: boolean): Promise<PersistenceMode> {
  const nodes = cluster ? (data as Cluster).nodes('master') : [data as Redis];
  if (nodes.length === 0) return 'unknown';
  const modes = await Promise.all(nodes.map((n) => persistenceOf(n, configGet)));
  return modes.reduce((worst, m) => (PERSISTENCE_MODES.indexOf(m) < PERSISTENCE_MODES.indexOf(worst) ? m : worst), 'aof' as PersistenceMode);
}

/**
 * CONFIG GET is tried only as Redis's default user: a named ACL user is least-privilege by intent,
 * and a refused command would land in its ACL LOG on every connect.
 */
export function mayConfigGet(url: string | undefined): boolean {
  if (url === undefined) return true;
  try {
    const user = decodeURIComponent(new URL(url).username);
    return user === '' || user === 'default';
  } catch {
    return false;
  }
}
