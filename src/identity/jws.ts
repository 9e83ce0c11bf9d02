import { ASYMMETRIC_ALGORITHMS } from '../config/schema/identity.js';
import type { DenyReason } from '../reasons.js';
import { decodeCanonical } from './base64url.js';
import { findDuplicateKey, freezeCountingKeys, textKeyCount } from './strict-json.js';

export interface ParsedToken {
  readonly alg: string;
  readonly kid: string | undefined;
  /** The header's typ as sent (any JSON type); checked only for issuers that configure `typ`. */
  readonly typ: unknown;
  readonly payload: Record<string, unknown>;
  readonly signingInput: Buffer;
  readonly signature: Buffer;
}

export interface ParseFailure {
  readonly reason: DenyReason;
  readonly detail: string;
}

const SUPPORTED_ALGS: ReadonlySet<string> = new Set([...ASYMMETRIC_ALGORITHMS, 'HS256']);
const MAX_KID_LENGTH = 256;
// Printable ASCII only: a kid goes into log lines and map lookups, never into paths or queries.
const SANE_KID = /^[\x20-\x7e]*$/;

const fail = (reason: DenyReason, detail: string): ParseFailure => ({ reason, detail });

/**
 * Structural checks of a compact JWS before any cryptography (RFC 7515/7519 plus RFC 8725 best
 * practice). Header members jku, x5u, jwk and x5c are never read: keys come only from the issuer's
 * configured source, so a token cannot point us at a key of its choosing.
 */
export function parseCompactJws(token: string, maxBytes: number): ParsedToken | ParseFailure {
  if (token.length > maxBytes) return fail('token_malformed', `token longer than ${maxBytes} bytes`);
  const d1 = token.indexOf('.');
  const d2 = d1 < 0 ? -1 : token.indexOf('.', d1 + 1);
  if (d1 < 0 || d2 < 0) return fail('token_malformed', 'not three dot-separated segments');
  if (token.indexOf('.', d2 + 1) >= 0) {
    const segments = token.split('.').length;
    return fail('token_malformed', segments === 5 ? 'JWE (encrypted token) not accepted' : `${segments} segments`);
  }
  const header = parseHeader(token.slice(0, d1));
  if ('reason' in header) return header;
  const { alg, kid, typ } = header;

  const payloadBytes = decodeCanonical(token.slice(d1 + 1, d2));
  if (!payloadBytes) return fail('token_malformed', 'payload is not canonical base64url');
  const payload = parseObject(payloadBytes);
  if (typeof payload === 'string') return fail('token_malformed', `payload ${payload}`);

  const sigSegment = token.slice(d2 + 1);
  if (sigSegment === '') return fail('token_invalid', 'signature missing');
  const signature = decodeCanonical(sigSegment);
  if (!signature) return fail('token_malformed', 'signature is not canonical base64url');

  return { alg, kid, typ, payload, signingInput: Buffer.from(token.slice(0, d2), 'latin1'), signature };
}

interface GoodHeader {
  readonly alg: string;
  readonly kid: string | undefined;
  /** Remembered with the header it came from; checked only for issuers that configure `typ`. */
  readonly typ: unknown;
}

const HEADER_MEMO_MAX = 256;
/**
 * Accepted headers by their exact base64url text. Tokens of one issuer key share one header, so
 * with distinct tokens (every call a cache miss) this skips a decode, a JSON.parse and the
 * duplicate-key scan per token. The result is a pure function of the text, so a hit answers
 * exactly what parsing would; only accepted headers are kept, and the memo is emptied when full,
 * so junk headers cannot grow it.
 */
const headerMemo = new Map<string, GoodHeader>();

function parseHeader(segment: string): GoodHeader | ParseFailure {
  const known = headerMemo.get(segment);
  if (known !== undefined) return known;
  const headerBytes = decodeCanonical(segment);
  if (!headerBytes) return fail('token_malformed', 'header is not canonical base64url');
  const header = parseObject(headerBytes);
  if (typeof header === 'string') return fail('token_malformed', `header ${header}`);
  const { alg, kid, crit, b64, cty, typ } = header;
  if (typeof alg !== 'string') return fail('token_invalid', 'alg missing or not a string');
  if (alg.toLowerCase() === 'none') return fail('token_invalid', 'alg none is never accepted');
  if (!SUPPORTED_ALGS.has(alg)) return fail('token_invalid', `alg ${JSON.stringify(alg)} not supported`);
  // We implement no JWS extension, so every crit list names one we do not understand (RFC 7515 §4.1.11).
  if (crit !== undefined) return fail('token_invalid', 'crit header present; no extensions are supported');
  if (b64 !== undefined) return fail('token_invalid', 'b64 header (RFC 7797 unencoded payload) not supported');
  if (typeof cty === 'string' && cty.toUpperCase() === 'JWT') return fail('token_invalid', 'nested JWT (cty JWT) not accepted');
  if (kid !== undefined) {
    if (typeof kid !== 'string') return fail('token_invalid', 'kid is not a string');
    if (kid.length > MAX_KID_LENGTH || !SANE_KID.test(kid)) return fail('token_invalid', 'kid has control characters or is too long');
  }
  const good: GoodHeader = { alg, kid, typ };
  if (headerMemo.size >= HEADER_MEMO_MAX) headerMemo.clear();
  headerMemo.set(segment, good);
  return good;
}

function parseObject(bytes: Buffer): Record<string, unknown> | string {
  const text = bytes.toString('utf8');
  // Invalid UTF-8 decodes to U+FFFD: two different byte strings would then read the same.
  if (text.includes('\uFFFD') && !Buffer.from(text, 'utf8').equals(bytes)) return 'is not valid UTF-8';
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'is not JSON';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'is not a JSON object';
  // Fewer parsed keys than written ones means a key was repeated; only then name it.
  if (freezeCountingKeys(value) !== textKeyCount(text)) return `has duplicate key ${JSON.stringify(findDuplicateKey(text) ?? '')}`;
  return value as Record<string, unknown>;
}
