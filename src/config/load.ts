import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { contentHash } from './hash.js';
import { configSchema, type Config } from './schema/index.js';
import { DEMO_CONFIG } from './defaults.js';

export interface LoadOptions {
  /** Config file path; undefined uses the embedded demo config. */
  readonly file?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  /** Command-line flags: they win over the environment, which wins over the file. */
  readonly flags?: { grpc?: string | undefined; http?: string | undefined; redis?: string | undefined; ui?: boolean | undefined };
}

export type LoadResult =
  | { readonly ok: true; readonly config: Config; readonly source: string; readonly hash: string; readonly embedded: boolean }
  | { readonly ok: false; readonly source: string; readonly errors: readonly string[] };

/** Environment variables that override the file (documented in the README). */
export const ENV_VARS = {
  ZT_AUTHZ_CONFIG: 'config file path',
  ZT_AUTHZ_GRPC: 'server.grpc.address',
  ZT_AUTHZ_HTTP: 'server.http.address',
  ZT_AUTHZ_REDIS: 'state.redis.url (and state.backend: redis)',
  ZT_AUTHZ_LOG_LEVEL: 'log.level',
} as const;

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
  }
  applyOverrides(raw as Record<string, unknown>, env, opts.flags ?? {});
  return validate(raw, source, file === undefined);
}

export function validate(raw: unknown, source: string, embedded = false): LoadResult {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    return {
      ok: false,
      source,
      errors: parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`),
    };
  }
  const errors = crossChecks(parsed.data);
  if (errors.length > 0) return { ok: false, source, errors };
  return { ok: true, config: parsed.data, source, hash: contentHash(parsed.data), embedded };
}

/** Rules that span sections (route, resource and time-zone rules live in the policy schema). */
function crossChecks(c: Config): string[] {
  const errors: string[] = [];
  if (c.identity.development_keys && c.identity.issuers.length > 0) {
    errors.push('identity.development_keys: cannot be combined with identity.issuers (development keys are never used with real issuers)');
  }
  if (!c.identity.development_keys && c.identity.issuers.length === 0) {
    errors.push('identity.issuers: at least one issuer is required');
  }
  c.identity.issuers.forEach((iss, i) => {
    const k = iss.keys;
    const sources = [k.jwks_uri, k.discovery, k.jwks_file, k.hs256_secret_env].filter((v) => v !== undefined && v !== false);
    if (sources.length === 0) errors.push(`identity.issuers.${i}.keys: one of jwks_uri, discovery, jwks_file, hs256_secret_env is required`);
    if (iss.algorithms.includes('HS256') && !k.hs256_secret_env) {
      errors.push(`identity.issuers.${i}.algorithms: HS256 requires keys.hs256_secret_env`);
    }
  });
  if (c.state.backend === 'redis' && !c.state.redis.url && !c.state.redis.sentinel && !c.state.redis.cluster) {
    errors.push('state.redis: backend redis needs url, sentinel or cluster');
  }
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
