import type { Algorithm, IdentityConfig, IssuerConfig } from '../config/schema/identity.js';
import type { AuthFault, AuthResult, Identity, NormalizedRequest } from '../model.js';
import { DEV_AUDIENCE, DEV_ISSUER, DEV_PUBLIC_JWKS, DEV_TOKEN_HEADER } from '../dev/keys.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { DenyReason } from '../reasons.js';
import { checkClaims, compileClaimMapping, resolveRoles, resolveScopes, type ClaimRules } from './claims.js';
import { extractToken, tokenLocations, type TokenLocation } from './extract.js';
import { IssuerKeys, type IssuerKeyStatus } from './issuer-keys.js';
import { parseCompactJws, type ParsedToken } from './jws.js';
import { keyFitsAlg, secretRecord, type KeyRecord } from './keys.js';
import type { KeySource } from './key-source.js';
import { verifySignature } from './signature.js';
import { TokenCache } from './token-cache.js';
import type { Authenticator, TokenExtraction } from './types.js';

/**
 * Detail prefix of the deny returned while an issuer has no usable keys (its JWKS never loaded).
 * The reason is token_invalid and the result carries fault 'keys_unavailable', by which the
 * engine tells a dependency outage from a bad token.
 */
export const KEYS_UNAVAILABLE = 'keys_unavailable';
/** Start of the detail of a token_invalid whose kid is not in the issuer's key set. */
export const UNKNOWN_KID = 'kid not in the JWKS';

const MIN_HS256_SECRET_BYTES = 32;

interface IssuerRuntime {
  readonly keys: IssuerKeys;
  readonly algorithms: ReadonlySet<string>;
  readonly rules: ClaimRules;
  readonly waitMs: number;
  /** Normalised accepted `typ` values (see normalizeTyp); undefined: not checked. */
  readonly typ: ReadonlySet<string> | undefined;
}

export interface AuthenticatorDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export function createAuthenticator(cfg: IdentityConfig, deps: AuthenticatorDeps): Authenticator {
  return new JwtAuthenticator(cfg, deps);
}

function deny(reason: DenyReason, detail: string, fault?: AuthFault): AuthResult {
  return fault === undefined ? { ok: false, reason, detail } : { ok: false, reason, detail, fault };
}

class JwtAuthenticator implements Authenticator {
  private readonly issuers = new Map<string, IssuerRuntime>();
  private readonly locations: TokenLocation[];
  private readonly cache: TokenCache;
  private readonly cacheMaxAgeMs: number;
  private readonly maxTokenBytes: number;
  private readonly cacheCounts: Metrics['tokenCacheCounts'];

  constructor(cfg: IdentityConfig, deps: AuthenticatorDeps) {
    const issuerCfgs = resolveIssuers(cfg, deps.logger);
    for (const ic of issuerCfgs) {
      if (this.issuers.has(ic.issuer)) throw new Error(`identity: issuer ${JSON.stringify(ic.issuer)} is configured twice`);
      const { source, secret } = keySourceOf(ic);
      this.issuers.set(ic.issuer, {
        keys: new IssuerKeys({
          issuer: ic.issuer,
          algorithms: ic.algorithms,
          source,
          secret,
          keys: ic.keys,
          logger: deps.logger,
          metrics: deps.metrics,
        }),
        algorithms: new Set(ic.algorithms),
        rules: {
          issuer: ic.issuer,
          audiences: new Set(ic.audiences),
          clockSkewS: cfg.clock_skew_s,
          maxLifetimeS: cfg.max_token_lifetime_s,
          mapping: compileClaimMapping(ic.claims),
        },
        waitMs: ic.keys.unknown_kid_wait_ms,
        typ: ic.typ === undefined ? undefined : new Set(ic.typ.map(normalizeTyp)),
      });
    }
    this.locations = tokenLocations(issuerCfgs.map((i) => ({ header: i.token_header, scheme: i.token_scheme })));
    this.cache = new TokenCache(cfg.token_cache.max_entries);
    this.cacheMaxAgeMs = cfg.token_cache.max_age_s * 1000;
    this.maxTokenBytes = cfg.max_token_bytes;
    this.cacheCounts = deps.metrics.tokenCacheCounts;
  }

  extractToken(req: NormalizedRequest): TokenExtraction {
    return extractToken(req, this.locations);
  }

  authenticate(token: string, nowMs: number, remember = true): AuthResult | Promise<AuthResult> {
    const e = this.cache.get(token);
    if (e !== undefined) {
      if (nowMs < e.expiresMs && nowMs >= e.notBeforeMs && e.key.live) {
        e.hot = true;
        this.cacheCounts.hit++;
        return e.result;
      }
      // Past its cache life or its key left the JWKS: verify afresh, which gives the precise reason.
      this.cache.delete(token);
    }
    this.cacheCounts.miss++;
    return this.verify(token, nowMs, remember);
  }

  ready(): boolean {
    for (const i of this.issuers.values()) if (!i.keys.ready()) return false;
    return true;
  }

  keyStatus(): Record<string, IssuerKeyStatus> {
    const out: Record<string, IssuerKeyStatus> = {};
    // Static sets (a jwks_file, the development keys) too: the live page lists every issuer's kids.
    for (const [name, i] of this.issuers) if (i.keys.refetchable || i.keys.set.size > 0) out[name] = i.keys.status();
    return out;
  }

  anyReady(): boolean {
    // Called on every Check, so once true it stays true and the issuer scan is skipped. A set that
    // later expires (max_stale_s) denies its own tokens in verify(), with dependency_unavailable.
    if (this.someReady) return true;
    for (const i of this.issuers.values()) if (i.keys.ready()) return (this.someReady = true);
    return false;
  }

  private someReady = false;

  async start(): Promise<void> {
    await Promise.all([...this.issuers.values()].map((i) => i.keys.start()));
  }

  close(): void {
    for (const i of this.issuers.values()) i.keys.close();
    this.cache.clear();
  }

  private verify(token: string, nowMs: number, remember: boolean): AuthResult | Promise<AuthResult> {
    const parsed = parseCompactJws(token, this.maxTokenBytes);
    if (!('alg' in parsed)) return deny(parsed.reason, parsed.detail);
    const { iss } = parsed.payload;
    if (typeof iss !== 'string') return deny('token_invalid', 'iss missing or not a string');
    const issuer = this.issuers.get(iss);
    if (issuer === undefined) return deny('issuer_unknown', 'iss names no configured issuer');
    if (!issuer.algorithms.has(parsed.alg)) return deny('token_invalid', `alg ${parsed.alg} not allowed for this issuer`);
    if (issuer.typ !== undefined && !(typeof parsed.typ === 'string' && issuer.typ.has(normalizeTyp(parsed.typ)))) {
      // RFC 8725 §3.11: a token of another kind (an ID token, a logout token) is not an access token here.
      return deny('token_invalid', `typ ${parsed.typ === undefined ? 'missing' : JSON.stringify(parsed.typ)}; this issuer requires ${[...issuer.typ].join(' or ')}`);
    }

    const found = selectKey(issuer.keys, parsed);
    if (typeof found !== 'string') return this.finish(token, parsed, issuer, found, nowMs, remember);
    if (found !== 'unknown_kid' && found !== KEYS_UNAVAILABLE) return deny('token_invalid', found);

    const fault: AuthFault = found === KEYS_UNAVAILABLE ? 'keys_unavailable' : 'unknown_kid';
    const why = fault === 'keys_unavailable' ? `${KEYS_UNAVAILABLE}: ${issuer.keys.unusableReason() ?? 'no usable keys loaded for the issuer'}` : UNKNOWN_KID;
    const pending = issuer.keys.refetchForUnknownKid();
    if (pending === undefined) return deny('token_invalid', `${why} (refetch cooling down)`, fault);
    return waitAtMost(pending, issuer.waitMs).then((settled) => {
      const again = selectKey(issuer.keys, parsed);
      if (typeof again !== 'string') return this.finish(token, parsed, issuer, again, nowMs, remember);
      if (again !== 'unknown_kid' && again !== KEYS_UNAVAILABLE) return deny('token_invalid', again);
      return deny('token_invalid', settled ? `${why} (after refetch)` : `${why} (refetch still running after ${issuer.waitMs} ms)`, fault);
    });
  }

  private finish(token: string, parsed: ParsedToken, issuer: IssuerRuntime, key: KeyRecord, nowMs: number, remember: boolean): AuthResult {
    if (!verifySignature(parsed.alg, key, parsed.signingInput, parsed.signature)) {
      return deny('token_invalid', 'signature verification failed');
    }
    const claims = checkClaims(parsed.payload, issuer.rules, nowMs);
    if ('reason' in claims) return deny(claims.reason, claims.detail);
    const frozen = deepFreeze(parsed.payload);
    // Roles and scopes are resolved here, once per verified token, and cached with the claims.
    const identity: Identity = {
      issuer: issuer.rules.issuer,
      sub: claims.sub,
      claims: frozen,
      roles: resolveRoles(frozen, issuer.rules.mapping),
      scopes: resolveScopes(frozen, issuer.rules.mapping),
      exp: claims.exp,
    };
    const result = Object.freeze({ ok: true as const, identity: Object.freeze(identity) });
    if (remember && this.cacheMaxAgeMs > 0) {
      const skewMs = issuer.rules.clockSkewS * 1000;
      this.cache.set(
        token,
        {
          result,
          expiresMs: Math.min(claims.exp * 1000 + skewMs, nowMs + this.cacheMaxAgeMs),
          notBeforeMs: claims.notBefore * 1000 - skewMs,
          key,
          hot: false,
        },
        nowMs,
      );
    }
    return result;
  }
}

/** The key for this token, or why there is none ('unknown_kid' / KEYS_UNAVAILABLE may be fixed by a refetch). */
function selectKey(keys: IssuerKeys, parsed: ParsedToken): KeyRecord | string {
  if (parsed.alg === 'HS256') return keys.secret ?? 'HS256 needs a configured secret';
  if (keys.unusableReason() !== undefined) return KEYS_UNAVAILABLE;
  const { set } = keys;
  if (parsed.kid === undefined) {
    const sole = set.soleByAlg.get(parsed.alg);
    if (sole === undefined) return `no key for alg ${parsed.alg}`;
    if (sole === null) return `kid missing and several keys fit alg ${parsed.alg}`;
    return sole;
  }
  const rec = set.byKid.get(parsed.kid);
  if (rec === undefined) return 'unknown_kid';
  if (!keyFitsAlg(parsed.alg, rec)) return `key ${JSON.stringify(parsed.kid)} cannot verify alg ${parsed.alg}`;
  return rec;
}

/** RFC 7515 §4.1.9: typ compares case-insensitively, and "application/" may be left out. */
function normalizeTyp(typ: string): string {
  const t = typ.toLowerCase();
  return t.startsWith('application/') && t.indexOf('/', 12) < 0 ? t.slice(12) : t;
}

function waitAtMost(p: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const done = () => {
      clearTimeout(timer);
      resolve(true);
    };
    p.then(done, done);
  });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

interface ResolvedIssuer extends IssuerConfig {
  readonly devSource?: KeySource;
}

function resolveIssuers(cfg: IdentityConfig, logger: Logger): ResolvedIssuer[] {
  if (!cfg.development_keys) return cfg.issuers;
  if (cfg.issuers.length > 0) {
    throw new Error(
      'identity: development_keys cannot be combined with configured issuers; the development key pair is public, so anyone could mint tokens it verifies',
    );
  }
  logger.warn(
    { issuer: DEV_ISSUER, audience: DEV_AUDIENCE },
    'DEVELOPMENT keys are active: anyone can mint tokens this server accepts. Never use this configuration in production.',
  );
  const algorithms: Algorithm[] = ['RS256', 'ES256'];
  return [
    {
      issuer: DEV_ISSUER,
      audiences: [DEV_AUDIENCE],
      algorithms,
      keys: { refresh_interval_s: 0, fetch_timeout_ms: 1, unknown_kid_cooldown_s: 0, unknown_kid_wait_ms: 1, max_stale_s: 0 },
      token_header: DEV_TOKEN_HEADER,
      token_scheme: 'Bearer',
      claims: { subject: ['sub'], roles: [['roles']], scopes: ['scope'] },
      devSource: { kind: 'static', jwks: DEV_PUBLIC_JWKS },
    },
  ];
}

function keySourceOf(ic: ResolvedIssuer): { source: KeySource | undefined; secret: KeyRecord | undefined } {
  const name = JSON.stringify(ic.issuer);
  if (ic.devSource) return { source: ic.devSource, secret: undefined };
  const k = ic.keys;
  const remote = [k.jwks_uri !== undefined, k.discovery === true, k.jwks_file !== undefined].filter(Boolean).length;
  if (remote > 1) throw new Error(`identity: issuer ${name}: set only one of keys.jwks_uri, keys.discovery, keys.jwks_file`);

  let secret: KeyRecord | undefined;
  const wantsHs = ic.algorithms.includes('HS256');
  if (k.hs256_secret_env !== undefined) {
    if (!wantsHs) throw new Error(`identity: issuer ${name}: hs256_secret_env is set but HS256 is not in algorithms`);
    const value = process.env[k.hs256_secret_env];
    if (value === undefined || value === '') {
      throw new Error(`identity: issuer ${name}: environment variable ${k.hs256_secret_env} (HS256 secret) is not set`);
    }
    const bytes = Buffer.from(value, 'utf8');
    if (bytes.length < MIN_HS256_SECRET_BYTES) {
      throw new Error(`identity: issuer ${name}: HS256 secret must be at least ${MIN_HS256_SECRET_BYTES} bytes (RFC 7518 §3.2)`);
    }
    secret = secretRecord(bytes);
  } else if (wantsHs) {
    // HS256 without an explicit secret is how public keys end up used as HMAC secrets.
    throw new Error(`identity: issuer ${name}: HS256 is allowed only with keys.hs256_secret_env`);
  }

  let source: KeySource | undefined;
  if (k.jwks_uri !== undefined) source = { kind: 'uri', url: k.jwks_uri };
  else if (k.discovery === true) source = { kind: 'discovery', issuer: ic.issuer };
  else if (k.jwks_file !== undefined) source = { kind: 'file', path: k.jwks_file };
  if (source === undefined && secret === undefined) {
    throw new Error(`identity: issuer ${name}: configure keys.jwks_uri, keys.discovery, keys.jwks_file or keys.hs256_secret_env`);
  }
  if (source !== undefined && k.max_stale_s > 0 && !(k.refresh_interval_s > 0 && k.max_stale_s > k.refresh_interval_s)) {
    throw new Error(
      `identity: issuer ${name}: keys.max_stale_s (${k.max_stale_s}) must exceed keys.refresh_interval_s (${k.refresh_interval_s}) and that must be above 0, or the set would expire between refreshes; set max_stale_s: 0 to serve the last good set forever`,
    );
  }
  if (source !== undefined && !ic.algorithms.some((a) => a !== 'HS256')) {
    throw new Error(`identity: issuer ${name}: a JWKS source needs at least one asymmetric algorithm`);
  }
  return { source, secret };
}
