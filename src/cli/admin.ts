import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { loadConfig } from '../config/load.js';
import { KeySpace, parseBlockTarget, StateInputError, validateScore, validateTtl, validateUser, DEFAULT_BLOCK_TTL_S, DEFAULT_SUSPEND_TTL_S } from '../state/keys.js';
import {
  adminBlock,
  adminList,
  adminRisk,
  adminSuspend,
  adminUnblock,
  adminUnrisk,
  adminUnsuspend,
  type AdminChange,
  type ListedEntry,
} from '../state/redis-admin.js';
import type { DataClient } from '../state/redis-conn.js';
import { ADMIN_TOKEN_ENV, ADMIN_UNBLOCK_PATH } from '../transport/admin-endpoint.js';

export const ADMIN_COMMANDS = ['suspend', 'unsuspend', 'block', 'unblock', 'risk', 'unrisk', 'list'] as const;

const USAGE = `Usage:
  zt-authz suspend <user> [--ttl S] [--reason R]   SET suspended_user:<user> true EX S (default ${DEFAULT_SUSPEND_TTL_S})
  zt-authz unsuspend <user>                        DEL suspended_user:<user>
  zt-authz block <ip|cidr> [--ttl S]               SET blocked_ip:<ip> / blocked_cidr:<cidr> true EX S (default ${DEFAULT_BLOCK_TTL_S})
  zt-authz unblock <ip|cidr>                       DEL the key
  zt-authz unblock --server URL <ip|cidr>          lift the block on a running server, any backend
                                                   (its loopback admin endpoint; memory store too)
  zt-authz risk <user> <score 0..1> [--ttl S]      HSET user_risk:<user> score <score> (no TTL unless --ttl)
  zt-authz unrisk <user>                           DEL user_risk:<user> (the token's own score applies again)
  zt-authz list [--json]                           every suspension, block and risk score with its TTL
                                                   (--json: ttl_s in seconds, null for no expiry)

Options:
  --config FILE   take state.redis.url and state.redis.key_prefix from the server's config file
                  (default: $ZT_AUTHZ_CONFIG when set)
  --redis URL     Redis to write to (default: $ZT_AUTHZ_REDIS, else the config's, else
                  redis://127.0.0.1:6379); a cluster node URL works too: the cluster is discovered from it
  --prefix P      key prefix, as state.redis.key_prefix (default: the config's, else none)
  --server URL    the server's HTTP listener (http://127.0.0.1:8181); sends
                  $ZT_AUTHZ_ADMIN_TOKEN as a bearer token when set
  -h, --help      this help

Running sidecars enforce a change within milliseconds (client-side tracking). Every change is
also recorded in security_alerts, with the OS user and host that made it (by_user, by_host).
Exit status: 0 done, 1 Redis error, 2 invalid input.
`;

type Parsed = ReturnType<typeof parse>;

/** Whatever Redis does, the command ends: an admin at a terminal must never be left hanging. */
const DEADLINE_MS = 15_000;

function parse(argv: string[]) {
  // `--ttl -5` would otherwise be read as an unknown option -5; hand it to our own validation.
  const args = argv.map((a, i) => (argv[i - 1] === '--ttl' && /^-/.test(a) ? `\0${a}` : a));
  const joined: string[] = [];
  for (const a of args) {
    if (a.startsWith('\0')) joined[joined.length - 1] = `--ttl=${a.slice(1)}`;
    else joined.push(a);
  }
  return parseArgs({
    args: joined,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string' },
      redis: { type: 'string' },
      server: { type: 'string' },
      prefix: { type: 'string' },
      ttl: { type: 'string' },
      reason: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function wholeSeconds(text: string | undefined, fallback?: number): number | undefined {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new StateInputError(`invalid --ttl ${JSON.stringify(text)}: expected whole seconds`);
  return validateTtl(Number(text), '--ttl');
}

function scoreOf(text: string | undefined): number {
  if (text === undefined || !/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(text)) {
    throw new StateInputError(`invalid risk score ${JSON.stringify(text ?? '')}: expected a number from 0 to 1`);
  }
  return validateScore(Number(text));
}

type Action = (data: DataClient, keys: KeySpace, scan: (p: string[]) => Promise<string[]>) => Promise<string>;

/** Validates everything up front and returns the Redis work to do: bad input never connects. */
function plan(command: string, args: Parsed): Action {
  const { positionals: pos, values: v } = args;
  const need = (n: number, what: string) => {
    if (pos.length !== n + 1) throw new StateInputError(`expected ${what}`);
  };
  const notFor = (...opts: (keyof typeof v)[]) => {
    for (const o of opts) if (v[o] !== undefined) throw new StateInputError(`--${o} does not apply`);
  };
  const user = () => validateUser(pos[1] ?? '');
  switch (command) {
    case 'suspend': {
      need(1, '<user>');
      notFor('json');
      const sub = user();
      const ttl = wholeSeconds(v.ttl, DEFAULT_SUSPEND_TTL_S) as number;
      return async (d, k) => describe('suspended', await adminSuspend(d, k, sub, ttl, v.reason));
    }
    case 'unsuspend': {
      need(1, '<user>');
      notFor('ttl', 'reason', 'json');
      const sub = user();
      return async (d, k) => describe('unsuspended', await adminUnsuspend(d, k, sub));
    }
    case 'block': {
      need(1, '<ip|cidr>');
      notFor('reason', 'json');
      const target = pos[1] as string;
      parseBlockTarget(target);
      const ttl = wholeSeconds(v.ttl, DEFAULT_BLOCK_TTL_S) as number;
      return async (d, k) => describe('blocked', await adminBlock(d, k, target, ttl));
    }
    case 'unblock': {
      need(1, '<ip|cidr>');
      notFor('ttl', 'reason', 'json');
      const target = pos[1] as string;
      parseBlockTarget(target);
      return async (d, k) => describe('unblocked', await adminUnblock(d, k, target));
    }
    case 'risk': {
      need(2, '<user> <score>');
      notFor('reason', 'json');
      const sub = user();
      const score = scoreOf(pos[2]);
      const ttl = wholeSeconds(v.ttl);
      return async (d, k) => describe('risk set', await adminRisk(d, k, sub, score, ttl));
    }
    case 'unrisk': {
      need(1, '<user>');
      notFor('ttl', 'reason', 'json');
      const sub = user();
      return async (d, k) => describe('risk cleared', await adminUnrisk(d, k, sub));
    }
    case 'list': {
      need(0, 'no arguments');
      notFor('ttl', 'reason');
      return async (d, k, scan) => formatList(await adminList(d, k, scan), v.json === true);
    }
    default:
      throw new StateInputError(`unknown admin command ${JSON.stringify(command)}`);
  }
}

function describe(verb: string, c: AdminChange): string {
  const parts = [`${verb}: ${c.key}`];
  if (c.score !== undefined) parts.push(`score ${c.score}`);
  if (c.ttlS !== undefined) parts.push(`ttl ${c.ttlS}s`);
  else if (c.kind === 'user_risk') parts.push('no expiry');
  if (c.existed === false) parts.push('(was not set)');
  return parts.join(', ');
}

function formatList(entries: ListedEntry[], json: boolean): string {
  if (json) {
    return JSON.stringify(
      entries.map(({ ttlMs, ...e }) => ({ ...e, ttl_s: ttlMs < 0 ? null : Math.ceil(ttlMs / 1000) })),
    );
  }
  if (entries.length === 0) return 'nothing listed';
  return entries
    .map((e) => {
      const ttl = e.ttlMs < 0 ? 'no expiry' : `ttl ${Math.ceil(e.ttlMs / 1000)}s`;
      return `${e.kind.padEnd(15)} ${e.id}${e.score === undefined ? '' : `  score ${e.score}`}  (${ttl})`;
    })
    .join('\n');
}

async function connect(url: string): Promise<{ data: DataClient; scan: (p: string[]) => Promise<string[]> }> {
  // Fail fast: one connection attempt, bounded commands, nothing queued while offline.
  const opts = {
    protocol: 2 as const,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 2000,
    connectTimeout: 2000,
    retryStrategy: () => null,
    disableClientInfo: true,
  };
  const first = new Redis(url, opts);
  let lastError: Error | undefined;
  first.on('error', (err: Error) => (lastError = err));
  await first.connect().catch((err: Error) => {
    const where = `${first.options.host ?? '?'}:${first.options.port ?? '?'}`;
    throw new Error(`cannot connect to ${where}: ${(lastError ?? err).message}`);
  });
  const info = await first.info('cluster');
  if (!/cluster_enabled:1/.test(info)) {
    return { data: first, scan: (patterns) => scanNode(first, patterns) };
  }
  const { host, port } = first.options;
  first.disconnect();
  const cluster = new Cluster([{ host: host ?? '127.0.0.1', port: port ?? 6379 }], {
    lazyConnect: true,
    enableOfflineQueue: false,
    clusterRetryStrategy: () => null,
    // Not the standalone options: with no offline queue and no node retry, the slot discovery never settles.
    redisOptions: {
      protocol: 2,
      commandTimeout: 2000,
      connectTimeout: 2000,
      maxRetriesPerRequest: 0,
      disableClientInfo: true,
      ...(first.options.password ? { password: first.options.password } : {}),
    },
  });
  cluster.on('error', () => undefined);
  await cluster.connect();
  return {
    data: cluster,
    scan: async (patterns) => (await Promise.all(cluster.nodes('master').map((n) => scanNode(n, patterns)))).flat(),
  };
}

async function scanNode(node: Redis, patterns: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const match of patterns) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
  }
  return out;
}

/** Entry point for `zt-authz suspend|unsuspend|block|unblock|risk|list ...`; argv[0] is the subcommand. */
export async function runAdmin(argv: string[]): Promise<number> {
  const command = argv[0] ?? '';
  let action: Action;
  let args: Parsed;
  try {
    args = parse(argv);
    if (args.values.help === true || command === '' || command === 'help') {
      process.stdout.write(USAGE);
      return command === '' ? 2 : 0;
    }
    action = plan(command, args);
  } catch (err) {
    // node:util's hints about '--' are for positionals starting with a dash: noise here.
    const message = (err as Error).message.replace(/\. To specify a.*$/s, '');
    process.stderr.write(`zt-authz ${command}: ${message} (zt-authz ${command} --help for usage)\n`);
    return 2;
  }
  if (args.values.server !== undefined) return unblockOnServer(command, args);
  let fromConfig: { url?: string | undefined; prefix?: string } = {};
  const configFile = args.values.config ?? (process.env.ZT_AUTHZ_CONFIG || undefined);
  if (configFile !== undefined) {
    const loaded = loadConfig({ file: configFile, env: {} });
    if (!loaded.ok) {
      const more = loaded.errors.length > 1 ? ` (and ${loaded.errors.length - 1} more; run zt-authz check-config)` : '';
      process.stderr.write(`zt-authz ${command}: invalid config ${loaded.source}: ${loaded.errors[0]}${more}\n`);
      return 2;
    }
    const redis = loaded.config.state.redis;
    if (!redis.url && (redis.sentinel || redis.cluster) && !args.values.redis && !process.env.ZT_AUTHZ_REDIS) {
      process.stderr.write(`zt-authz ${command}: ${configFile} reaches Redis through ${redis.sentinel ? 'Sentinel' : 'a cluster'}; pass --redis URL of a master (cluster node)\n`);
      return 2;
    }
    fromConfig = { url: redis.url, prefix: redis.key_prefix };
  }
  const url = args.values.redis ?? process.env.ZT_AUTHZ_REDIS ?? fromConfig.url ?? 'redis://127.0.0.1:6379';
  if (!/^rediss?:\/\//.test(url)) {
    process.stderr.write(`zt-authz ${command}: invalid --redis ${JSON.stringify(url)}: expected redis:// or rediss://\n`);
    return 2;
  }
  let conn: Awaited<ReturnType<typeof connect>> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${DEADLINE_MS} ms`)), DEADLINE_MS);
  });
  try {
    const work = (async () => {
      conn = await connect(url);
      return action(conn.data, new KeySpace(args.values.prefix ?? fromConfig.prefix ?? ''), conn.scan);
    })();
    const out = await Promise.race([work, deadline]);
    process.stdout.write(`${out}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`zt-authz ${command}: Redis error: ${(err as Error).message}\n`);
    return 1;
  } finally {
    clearTimeout(timer);
    (conn as Awaited<ReturnType<typeof connect>> | undefined)?.data.disconnect();
  }
}

/** `unblock --server URL <target>`: POST to the running server's admin endpoint. */
async function unblockOnServer(command: string, args: Parsed): Promise<number> {
  const fail = (code: number, msg: string) => {
    process.stderr.write(`zt-authz ${command}: ${msg}\n`);
    return code;
  };
  if (command !== 'unblock') return fail(2, '--server applies to unblock only');
  if (args.values.redis !== undefined || args.values.prefix !== undefined) return fail(2, '--server and --redis/--prefix exclude each other');
  let url: URL;
  try {
    url = new URL(ADMIN_UNBLOCK_PATH, args.values.server);
  } catch {
    url = new URL('invalid:');
  }
  if (url.protocol !== 'http:') return fail(2, `invalid --server ${JSON.stringify(args.values.server)}: expected http://HOST:PORT`);
  const token = process.env[ADMIN_TOKEN_ENV];
  const body = JSON.stringify({ target: args.positionals[1] });
  try {
    const { status, text } = await post(url, body, token);
    if (status !== 200) return fail(status === 400 ? 2 : 1, `server answered ${status}: ${text}`);
    const id = (JSON.parse(text) as { unblocked?: string }).unblocked;
    process.stdout.write(`unblocked: ${id ?? ''} (on ${url.host})\n`);
    return 0;
  } catch (err) {
    return fail(1, `server error: ${(err as Error).message}`);
  }
}

/** One request with a deadline this code owns: the socket is destroyed and the promise settled. */
function post(url: URL, body: string, token: string | undefined): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
    if (token) headers.authorization = `Bearer ${token}`;
    const req = request(url, { method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text });
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer within ${DEADLINE_MS} ms`));
    }, DEADLINE_MS);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}
