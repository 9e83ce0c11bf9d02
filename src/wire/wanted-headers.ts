import type { Config } from '../config/schema/index.js';
import { DEV_TOKEN_HEADER } from '../dev/keys.js';
import { TRACE_HEADERS } from '../observability/trace-context.js';
import { headerNamesOf } from '../policy/cel.js';

/**
 * HttpRequest fields Envoy also sends as headers (id, method, path, host, scheme). Normalisation
 * reads the header only when the field is empty, so the decoder folds these into the fields
 * instead of keeping a second copy in the header map.
 */
export const FOLDED_HEADERS = [':authority', 'host', ':method', ':path', ':scheme', 'x-request-id'] as const;
export const FOLD = { authority: 0, host: 1, method: 2, path: 3, scheme: 4, id: 5 } as const;

/** Normalisation reads the folded headers as fallbacks, and x-forwarded-for for the client IP. */
const READ_BY_NORMALIZATION: readonly string[] = [...FOLDED_HEADERS, 'x-forwarded-for'];

/**
 * The request headers some check reads: the pseudo-headers and fallbacks normalisation uses, the
 * issuers' token headers, the device-posture header and the headers `when` conditions name. The gRPC decoder keeps only these, so a
 * header nothing reads (user agents, cookies, tracing headers) costs no string and no property,
 * and a client cannot choose the property names of our header objects.
 *
 * Anything that starts reading another request header must add it here;
 * test/core/wanted-headers.test.ts checks that decisions with the filter equal those without it.
 */
export function wantedHeaderNames(cfg: HeaderConfig): string[] {
  return [...new Set([...READ_BY_NORMALIZATION, ...checkHeaderNames(cfg)])];
}

/** What decides the wanted headers: the checks, and (when present) logging and tracing. */
type HeaderConfig = Pick<Config, 'identity' | 'policy'> & Partial<Pick<Config, 'log' | 'tracing'>>;

/**
 * The headers the checks themselves read (token, device and condition headers), as opposed to normalisation, the condition headers,
 * and the trace-context headers when a decision line or a span carries the trace id.
 */
function checkHeaderNames(cfg: HeaderConfig): string[] {
  const names: string[] = [];
  const logsTraceIds = cfg.log !== undefined && cfg.log.trace_ids && cfg.log.decisions !== 'none';
  if (logsTraceIds || (cfg.tracing !== undefined && cfg.tracing.otlp_endpoint !== '')) names.push(...TRACE_HEADERS);
  if (cfg.identity.development_keys) names.push(DEV_TOKEN_HEADER);
  for (const issuer of cfg.identity.issuers) names.push(issuer.token_header.toLowerCase());
  const device = cfg.policy.risk.device.header;
  if (device !== undefined) names.push(device.toLowerCase());
  // `when` conditions may read request.headers only with literal keys, so these are all they read.
  const when = [...Object.values(cfg.policy.resources), ...cfg.policy.routes].flatMap((x) => x.when ?? []);
  names.push(...headerNamesOf(when));
  return names;
}

/** Values keyed by names bucketed by UTF-8 length, so the decoder compares a few bytes instead of creating a string. */
export type ByteTable<T> = readonly (readonly (readonly [Uint8Array, T])[] | undefined)[];
export type NameTable = ByteTable<string>;

function byteTable<T>(entries: Iterable<readonly [string, T]>): ByteTable<T> {
  const t: (readonly [Uint8Array, T])[][] = [];
  for (const [n, v] of entries) (t[Buffer.byteLength(n)] ??= []).push([Buffer.from(n), v]);
  return t;
}

export function nameTable(names: Iterable<string>): NameTable {
  return byteTable([...new Set(names)].map((n) => [n, n] as const));
}

/** Folded header name → FOLDED_HEADERS index. */
export type FoldTable = ByteTable<number>;

/** Which map<string, string> header entries the decoder keeps, and which it folds into fields. */
export class WantedHeaders {
  /** Kept in the header map. */
  readonly table: NameTable;
  /** Folded: FOLDED_HEADERS indices, for those no check needs as a header too (a token header named "host", say). */
  readonly fold: FoldTable;
  /**
   * The decoder's scratch for the byte ranges [start, end) of the folded values of the request
   * being decoded, two slots per FOLD index. Decoding is synchronous, so one per config serves
   * every request without allocating.
   */
  readonly foldRanges = new Int32Array(2 * FOLDED_HEADERS.length);

  /** `checkHeaders`: the headers the checks read; a folded name among them stays a header too. */
  private constructor(checkHeaders: readonly string[]) {
    const folded = FOLDED_HEADERS.filter((n) => !checkHeaders.includes(n));
    this.table = nameTable([...READ_BY_NORMALIZATION, ...checkHeaders].filter((n) => !(folded as readonly string[]).includes(n)));
    this.fold = byteTable(folded.map((n) => [n, FOLDED_HEADERS.indexOf(n)] as const));
  }

  static of(cfg: HeaderConfig): WantedHeaders {
    return new WantedHeaders(checkHeaderNames(cfg));
  }
}
