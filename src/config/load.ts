import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { contentHash, decisionHash } from './hash.js';
import { routeErrors } from './route-lint.js';
import { configSchema, type Config } from './schema/index.js';
import { didYouMean, keysAt } from './suggest.js';
import { DEMO_CONFIG } from './defaults.js';

export interface LoadOptions {
  /** Config file path; undefined uses the embedded demo config. */
  readonly file?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  /** Command-line flags: they win over the environment, which wins over the file. */
  readonly flags?: { grpc?: string | undefined; http?: string | undefined; redis?: string | undefined; ui?: boolean | undefined };
  /**
   * `serve --dev`: turn on the bundled development keys. Only this flag or the embedded demo
   * config can: the keys are public, so a config file (which anyone with write access to a
   * ConfigMap can change) never may.
   */
  readonly dev?: boolean;
}

export type LoadResult =
  | {
      readonly ok: true;
      readonly config: Config;
      readonly source: string;
      /** The policy hash: what decides (see decisionHash), not where it listens. */
      readonly hash: string;
      /** Hash of the whole config: tells a reload whether anything at all changed. */
      readonly configHash: string;
      readonly embedded: boolean;
    }
  | { readonly ok: false; readonly source: string; readonly errors: readonly string[] };

/** Environment variables that override the file (documented in the README). */
export const ENV_VARS = {
  ZT_AUTHZ_CONFIG: 'config file path',
  ZT_AUTHZ_GRPC: 'server.grpc.address',
  ZT_AUTHZ_HTTP: 'server.http.address',
  ZT_AUTHZ_REDIS: 'state.redis.url (and state.backend: redis)',
  ZT_AUTHZ_LOG_LEVEL: 'log.level',
  ZT_AUTHZ_WORKERS: 'serve --workers (processes behind the same ports)',
} as const;

export const DEV_KEYS_FROM_FILE =
  'identity.development_keys: cannot be turned on from a config file. The development key set is public ' +
  '(its private key ships with zt-authz), so anyone could mint tokens it accepts. For a laptop demo run ' +
  '`zt-authz serve` with no config, or `zt-authz serve --dev --config FILE` (loopback listeners only).';

export function loadConfig(opts: LoadOptions = {}): LoadResult {
  const env = opts.env ?? process.env;
  const file = opts.file ?? (env.ZT_AUTHZ_CONFIG || undefined);
  const source = file ?? '<embedded demo config>';
  let raw: unknown;
  if (file === undefined) {
    raw = structuredClone(DEMO_CONFIG);
  } else {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      return { ok: false, source, errors: [`${file}: cannot read: ${(err as Error).message}`] };
    }
    const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      return { ok: false, source, errors: doc.errors.map((e) => `${file}: YAML: ${e.message}`) };
    }
    raw = doc.toJS() ?? {};
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      return { ok: false, source, errors: [`${file}: the top level must be a mapping`] };
    }
    const identity = (raw as Record<string, unknown>).identity;
    const devKeys = typeof identity === 'object' && identity !== null ? (identity as Record<string, unknown>).development_keys : undefined;
    if (devKeys !== undefined && devKeys !== false) return { ok: false, source, errors: [DEV_KEYS_FROM_FILE] };
  }
  applyOverrides(raw as Record<string, unknown>, env, opts.flags ?? {});
  if (opts.dev) {
    const r = raw as Record<string, unknown>;
    const identity = typeof r.identity === 'object' && r.identity !== null ? (r.identity as Record<string, unknown>) : (r.identity = {});
    identity.development_keys = true;
  }
  return validate(raw, source, file === undefined);
}

export function validate(raw: unknown, source: string, embedded = false): LoadResult {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    return {
      ok: false,
      source,
      errors: parsed.error.issues.map((i) => {
        const where = i.path.length ? i.path.join('.') : '(root)';
        if (i.code !== 'unrecognized_keys') return `${where}: ${i.message}`;
        const known = keysAt(configSchema, i.path);
        const hints = i.keys.map((k) => {
          const near = didYouMean(k, known);
          return near ? `"${k}" (did you mean "${near}"?)` : `"${k}"`;
        });
        return `${where}: unknown key ${hints.join(', ')}${known.length ? `; known keys: ${known.join(', ')}` : ''}`;
      }),
    };
  }
  const errors = crossChecks(parsed.data);
  if (errors.length > 0) return { ok: false, source, errors };
  return { ok: true, config: parsed.data, source, hash: decisionHash(parsed.data), configHash: contentHash(parsed.data), embedded };
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** Unix sockets count as loopback: only processes on the same host (pod) can reach them. */
export function isLoopbackAddress(address: string): boolean {
  if (address.startsWith('unix:')) return true;
  const host = address.slice(0, address.lastIndexOf(':'));
  return LOOPBACK_HOSTS.has(host.toLowerCase()) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function isLoopbackUrl(url: string): boolean {
  try {
    const host = new URL(url).hostname.toLowerCase();
    return LOOPBACK_HOSTS.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  } catch {
    return false;
  }
}

/** Rules that span sections (route, resource and time-zone rules live in the policy schema). */
function crossChecks(c: Config): string[] {
  const errors: string[] = [];
  if (c.identity.development_keys && c.identity.issuers.length > 0) {
    errors.push('identity.development_keys: cannot be combined with identity.issuers (development keys are never used with real issuers)');
  }
  if (c.identity.development_keys) {
    const listeners = [['server.grpc.address', c.server.grpc.address], ['server.http.address', c.server.http.address]] as const;
    for (const [key, address] of listeners) {
      if (address !== '' && !isLoopbackAddress(address)) {
        errors.push(
          `identity.development_keys: refused because ${key} is ${address}, not a loopback address; the public development keys are served on loopback (127.0.0.1, ::1, localhost or unix:) only`,
        );
      }
    }
  }
  if (!c.identity.development_keys && c.identity.issuers.length === 0) {
    errors.push('identity.issuers: at least one issuer is required');
  }
  const firstIssuer = new Map<string, number>();
  c.identity.issuers.forEach((iss, i) => {
    const k = iss.keys;
    const seen = firstIssuer.get(iss.issuer);
    if (seen !== undefined) errors.push(`identity.issuers.${i}.issuer: ${JSON.stringify(iss.issuer)} is already configured as identity.issuers.${seen}`);
    else firstIssuer.set(iss.issuer, i);
    const sources = [k.jwks_uri, k.discovery, k.jwks_file, k.hs256_secret_env].filter((v) => v !== undefined && v !== false);
    if (sources.length === 0) errors.push(`identity.issuers.${i}.keys: one of jwks_uri, discovery, jwks_file, hs256_secret_env is required`);
    if (k.jwks_uri !== undefined && k.discovery === true) {
      errors.push(`identity.issuers.${i}.keys: set jwks_uri or discovery, not both (discovery would fetch its own jwks_uri)`);
    }
    if (k.jwks_uri?.startsWith('http://') && !isLoopbackUrl(k.jwks_uri)) {
      errors.push(`identity.issuers.${i}.keys.jwks_uri: http:// to a non-loopback host lets anyone on the path swap the signing keys; use https://`);
    }
    if (k.discovery === true && /^http:\/\//i.test(iss.issuer) && !isLoopbackUrl(iss.issuer)) {
      errors.push(`identity.issuers.${i}.keys.discovery: the issuer is http:// on a non-loopback host, so discovery and its JWKS would travel unprotected; use an https:// issuer`);
    }
    if (iss.algorithms.includes('HS256') && !k.hs256_secret_env) {
      errors.push(`identity.issuers.${i}.algorithms: HS256 requires keys.hs256_secret_env`);
    }
  });
  if (c.state.backend === 'redis' && !c.state.redis.url && !c.state.redis.sentinel && !c.state.redis.cluster) {
    errors.push('state.redis: backend redis needs url, sentinel or cluster');
  }
  errors.push(...routeErrors(c.policy.routes));
  return errors;
}

function applyOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv, flags: NonNullable<LoadOptions['flags']>): void {
  const section = (obj: Record<string, unknown>, key: string): Record<string, unknown> => {
    const v = obj[key];
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    const fresh: Record<string, unknown> = {};
    obj[key] = fresh;
    return fresh;
  };
  const grpc = flags.grpc ?? env.ZT_AUTHZ_GRPC;
  const http = flags.http ?? env.ZT_AUTHZ_HTTP;
  const redis = flags.redis ?? env.ZT_AUTHZ_REDIS;
  const level = env.ZT_AUTHZ_LOG_LEVEL;
  if (grpc) section(section(raw, 'server'), 'grpc').address = grpc;
  if (http !== undefined && http !== null && (flags.http !== undefined || env.ZT_AUTHZ_HTTP !== undefined)) {
    section(section(raw, 'server'), 'http').address = http;
  }
  if (redis) {
    const state = section(raw, 'state');
    state.backend = 'redis';
    section(state, 'redis').url = redis;
  }
  if (level) section(raw, 'log').level = level;
  if (flags.ui) section(section(raw, 'server'), 'http').ui = true;
}
