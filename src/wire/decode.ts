/**
 * Decodes, straight from the protobuf bytes, only the parts of a CheckRequest that the checks read
 * (see WireCheckRequest and normalizeCheckRequest); everything else is stepped over without being
 * materialised. Decoding was the largest single cost of a cached Check, and most of it went to
 * fields nothing reads (destination, time, protocol).
 *
 * Field numbers and wire types come from proto/ (the same files as Envoy's: test/core/proto-wire.test.ts)
 * through protobufjs reflection at startup (schema.ts). test/core/wire-decode.test.ts checks this
 * decoder against protobufjs on generated and mutated requests. A repeated singular field keeps
 * the last value, and a map keeps the last value per key, as in protobufjs.
 *
 * Strict where protobufjs is, and stricter: bytes protobufjs rejects are rejected here too, so a
 * request is decided only if protobufjs would also decode it. A varint, length or field that runs
 * past the end of its enclosing message, field number 0, a known field with a wire type other than
 * its declared one (protobufjs reads those as declared and loses its place), a field key or length
 * longer than 5 bytes and a 32-bit varint of 6 to 9 (both of which protobufjs misreads), wire types
 * 4, 6 and 7, and nesting deeper than MAX_DEPTH throw WireDecodeError (an explicit request_invalid deny). A
 * known message-typed field the checks do not read (destination, time, metadata) is not just
 * stepped over: its structure is walked with its schema, as protobufjs would decode it.
 */
import type { WireCheckRequest, WireHeaderValue, WirePeer } from './check-request.js';
import { loadCheckRequestSchemas, schemaFor, type MessageSchema } from './schema.js';
import { FOLD, nameTable, type ByteTable, type FoldTable, type NameTable, type WantedHeaders } from './wanted-headers.js';

/** Bytes that are not a well-formed CheckRequest. */
export class WireDecodeError extends Error {}

/** Groups within groups, and messages within messages when walking a skipped field (protobufjs allows 100). */
const MAX_DEPTH = 32;

/** Header names Envoy and Istio send on nearly every request. */
const HEADER_NAMES = nameTable([
  ':authority', ':method', ':path', ':scheme', 'host', 'user-agent', 'accept', 'accept-encoding', 'accept-language',
  'authorization', 'cookie', 'content-type', 'content-length', 'origin', 'referer', 'x-request-id', 'x-forwarded-for',
  'x-forwarded-proto', 'x-forwarded-client-cert', 'x-envoy-attempt-count', 'x-envoy-external-address',
  'x-envoy-internal', 'x-envoy-expected-rq-timeout-ms', 'traceparent', 'tracestate', 'x-b3-traceid', 'x-b3-spanid',
  'x-b3-parentspanid', 'x-b3-sampled',
]);

const SHORT_VALUES = nameTable(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'http', 'https']);

const SCHEMAS = loadCheckRequestSchemas();
const AUTH = 'envoy.service.auth.v3';
const CORE = 'envoy.config.core.v3';
/** The messages the decoder reads, each with the fields it reads (a proto without them fails at startup). */
const S = {
  checkRequest: schemaFor(SCHEMAS, `${AUTH}.CheckRequest`, ['attributes']),
  attributeContext: schemaFor(SCHEMAS, `${AUTH}.AttributeContext`, ['source', 'request', 'context_extensions']),
  peer: schemaFor(SCHEMAS, `${AUTH}.AttributeContext.Peer`, ['address', 'principal']),
  address: schemaFor(SCHEMAS, `${CORE}.Address`, ['socket_address']),
  socketAddress: schemaFor(SCHEMAS, `${CORE}.SocketAddress`, ['address']),
  request: schemaFor(SCHEMAS, `${AUTH}.AttributeContext.Request`, ['http']),
  httpRequest: schemaFor(SCHEMAS, `${AUTH}.AttributeContext.HttpRequest`, ['id', 'method', 'headers', 'path', 'host', 'scheme', 'query', 'header_map']),
  headerMap: schemaFor(SCHEMAS, `${CORE}.HeaderMap`, ['headers']),
  headerValue: schemaFor(SCHEMAS, `${CORE}.HeaderValue`, ['key', 'value', 'raw_value']),
};
/** map<string, string> entries: context_extensions' and headers' (both {key 1, value 2}). */
const MAP_ENTRY = S.attributeContext.nested[S.attributeContext.field.context_extensions]!;
const HEADERS_ENTRY = S.httpRequest.nested[S.httpRequest.field.headers]!;
if (MAP_ENTRY.field.key !== HEADERS_ENTRY.field.key || MAP_ENTRY.field.value !== HEADERS_ENTRY.field.value) throw new Error('zt-authz: map entries differ');

/*
 * Field numbers as constants the switches below compare with (a switch on a property load would
 * read it per case).
 */
const CR_ATTRIBUTES = S.checkRequest.field.attributes;
const AC_SOURCE = S.attributeContext.field.source;
const AC_REQUEST = S.attributeContext.field.request;
const AC_CONTEXT_EXTENSIONS = S.attributeContext.field.context_extensions;
const PEER_ADDRESS = S.peer.field.address;
const PEER_PRINCIPAL = S.peer.field.principal;
const ADDRESS_SOCKET = S.address.field.socket_address;
const SOCKET_ADDRESS = S.socketAddress.field.address;
const REQUEST_HTTP = S.request.field.http;
const H = S.httpRequest.field;
const [H_ID, H_METHOD, H_HEADERS, H_PATH, H_HOST, H_SCHEME, H_QUERY, H_HEADER_MAP] = [H.id, H.method, H.headers, H.path, H.host, H.scheme, H.query, H.header_map];
const HEADER_MAP_HEADERS = S.headerMap.field.headers;
const [HV_KEY, HV_VALUE, HV_RAW_VALUE] = [S.headerValue.field.key, S.headerValue.field.value, S.headerValue.field.raw_value];
const ENTRY_KEY = MAP_ENTRY.field.key!;
const ENTRY_VALUE = MAP_ENTRY.field.value!;

/** Buffer's own UTF-8 decoder without toString's argument handling (protobufjs calls it too). */
type Utf8Sliceable = Buffer & { utf8Slice(start: number, end: number): string };

class Reader {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    /** The headers map entries to keep and to fold; undefined keeps them all. */
    readonly wanted: WantedHeaders | undefined,
  ) {}

  /**
   * The low 32 bits of a varint of at most `maxBytes` bytes, which must end before `end`. A field
   * key or a length prefix gets 5, as Envoy's C++ parser reads them: protobufjs reads 5 bytes and
   * then steps over 5 more whatever they hold, so a longer one would leave it somewhere other than
   * here (found by the mutation test).
   */
  varint(end: number, maxBytes = 10): number {
    const buf = this.buf;
    let value = 0;
    for (let i = 0; i < maxBytes; i++) {
      if (this.pos >= end) throw new WireDecodeError('truncated varint');
      const b = buf[this.pos++]!;
      if (i < 5) value = (value | ((b & 127) << (7 * i))) >>> 0;
      if (b < 128) return value;
    }
    throw new WireDecodeError(maxBytes === 10 ? 'varint longer than 10 bytes' : `field key or length longer than ${maxBytes} bytes`);
  }

  /**
   * Steps over the value of a field protobufjs reads as a 32-bit varint (int32, uint32, bool, enum):
   * it agrees with us on where such a value ends only at up to 5 bytes, or at exactly 10 (a
   * negative int32).
   */
  skipVarint32(end: number): void {
    const start = this.pos;
    this.varint(end);
    const n = this.pos - start;
    if (n > 5 && n < 10) throw new WireDecodeError(`32-bit varint of ${n} bytes`);
  }

  /**
   * A field key. Field number 0 does not exist, and a field `schema` declares must come with its
   * declared wire type (or packed, for a packable repeated one); protobufjs reads past either
   * differently than we would.
   */
  tag(end: number, schema: MessageSchema | undefined): number {
    const t = this.varint(end, 5);
    const field = t >>> 3;
    if (field === 0) throw new WireDecodeError('field number 0');
    if (schema !== undefined && field < schema.wireType.length) {
      const wt = schema.wireType[field]!;
      const got = t & 7;
      if (wt !== -1 && wt !== got && !(got === 2 && schema.packedElement[field] !== -1)) {
        throw new WireDecodeError(`field ${field} with wire type ${got}, declared ${wt}`);
      }
    }
    return t;
  }

  /** Reads a length prefix and returns where that field ends. */
  fieldEnd(end: number): number {
    const len = this.varint(end, 5);
    const fieldEnd = this.pos + len;
    if (fieldEnd > end) throw new WireDecodeError('length past the end of the message');
    return fieldEnd;
  }

  string(end: number): string {
    const fieldEnd = this.fieldEnd(end);
    const s = fieldEnd === this.pos ? '' : (this.buf as Utf8Sliceable).utf8Slice(this.pos, fieldEnd);
    this.pos = fieldEnd;
    return s;
  }

  /** As string(), but returns the table's own string when the bytes spell one of its entries. */
  interned(end: number, table: NameTable): string {
    const fieldEnd = this.fieldEnd(end);
    const s = lookup(this.buf, this.pos, fieldEnd, table) ?? (fieldEnd === this.pos ? '' : (this.buf as Utf8Sliceable).utf8Slice(this.pos, fieldEnd));
    this.pos = fieldEnd;
    return s;
  }

  /** A string of bytes [start, end) read earlier. */
  slice(start: number, end: number): string {
    return start === end ? '' : (this.buf as Utf8Sliceable).utf8Slice(start, end);
  }

  bytes(end: number): Buffer {
    const fieldEnd = this.fieldEnd(end);
    const b = this.buf.subarray(this.pos, fieldEnd);
    this.pos = fieldEnd;
    return b;
  }

  /**
   * Steps over a field the decoder does not read. One of `schema`'s message fields (or packed
   * scalars) is walked as protobufjs would decode it, so garbage inside fails here too; an unknown
   * field is skipped by its wire type, as protobufjs skips it.
   */
  stepOver(tag: number, end: number, schema: MessageSchema, depth = 0): void {
    const wt = tag & 7;
    if (wt === 2) {
      const field = tag >>> 3;
      if (field < schema.nested.length) {
        const nested = schema.nested[field];
        if (nested !== undefined) {
          const fieldEnd = this.fieldEnd(end);
          this.walk(fieldEnd, nested, depth + 1);
          return;
        }
        const element = schema.packedElement[field]!;
        if (element !== -1) {
          const fieldEnd = this.fieldEnd(end);
          if (schema.varint32[field] === 1) while (this.pos < fieldEnd) this.skipVarint32(fieldEnd);
          else while (this.pos < fieldEnd) this.skipField(element, fieldEnd);
          return;
        }
      }
    } else if (wt === 0 && schema.varint32[tag >>> 3] === 1) {
      this.skipVarint32(end);
      return;
    }
    this.skipField(wt, end);
  }

  /** Checks the structure of a whole message of `schema` in [pos, end) and steps past it. */
  private walk(end: number, schema: MessageSchema, depth: number): void {
    if (depth > MAX_DEPTH) throw new WireDecodeError('messages nested too deep');
    while (this.pos < end) this.stepOver(this.tag(end, schema), end, schema, depth);
  }

  skipField(wireType: number, end: number, depth = 0): void {
    switch (wireType) {
      case 0:
        this.varint(end);
        return;
      case 1:
        this.advance(8, end);
        return;
      case 2:
        this.pos = this.fieldEnd(end);
        return;
      case 3: {
        if (depth >= MAX_DEPTH) throw new WireDecodeError('groups nested too deep');
        for (;;) {
          const wt = this.tag(end, undefined) & 7;
          if (wt === 4) return;
          this.skipField(wt, end, depth + 1);
        }
      }
      case 5:
        this.advance(4, end);
        return;
      default:
        throw new WireDecodeError(`invalid wire type ${wireType}`);
    }
  }

  private advance(n: number, end: number): void {
    if (this.pos + n > end) throw new WireDecodeError('fixed-width field past the end of the message');
    this.pos += n;
  }
}

/** The value for bytes [start, end) in `table`, or undefined (and no string made) when it has none. */
function lookup<T>(buf: Buffer, start: number, end: number, table: ByteTable<T>): T | undefined {
  const len = end - start;
  const candidates = table[len];
  if (candidates === undefined) return undefined;
  for (const [bytes, value] of candidates) {
    let i = 0;
    while (i < len && buf[start + i] === bytes[i]) i++;
    if (i === len) return value;
  }
  return undefined;
}

/**
 * Throws WireDecodeError for bytes that are not a well-formed CheckRequest. With `wanted`, the
 * `headers` map keeps only those names (header_map, the raw form, is kept whole).
 */
export function decodeCheckRequest(buf: Buffer, wanted?: WantedHeaders): WireCheckRequest {
  const r = new Reader(buf, wanted);
  const end = buf.length;
  const msg: WireCheckRequest = {};
  while (r.pos < end) {
    const tag = r.tag(end, S.checkRequest);
    if (tag >>> 3 === CR_ATTRIBUTES) msg.attributes = attributeContext(r, r.fieldEnd(end));
    else r.stepOver(tag, end, S.checkRequest);
  }
  return msg;
}

type Attributes = NonNullable<WireCheckRequest['attributes']>;
type Http = NonNullable<NonNullable<Attributes['request']>['http']>;

function attributeContext(r: Reader, end: number): Attributes {
  const a: Attributes = {};
  while (r.pos < end) {
    const tag = r.tag(end, S.attributeContext);
    switch (tag >>> 3) {
      case AC_SOURCE:
        a.source = peer(r, r.fieldEnd(end));
        break;
      case AC_REQUEST:
        a.request = request(r, r.fieldEnd(end));
        break;
      case AC_CONTEXT_EXTENSIONS:
        a.context_extensions = mapEntry(r, r.fieldEnd(end), a.context_extensions ?? emptyMap());
        break;
      default:
        r.stepOver(tag, end, S.attributeContext);
    }
  }
  return a;
}

/** AttributeContext.Peer: address and principal. */
function peer(r: Reader, end: number): WirePeer {
  const p: WirePeer = {};
  while (r.pos < end) {
    const tag = r.tag(end, S.peer);
    switch (tag >>> 3) {
      case PEER_ADDRESS:
        p.address = address(r, r.fieldEnd(end));
        break;
      case PEER_PRINCIPAL:
        p.principal = r.string(end);
        break;
      default:
        r.stepOver(tag, end, S.peer);
    }
  }
  return p;
}

/** config.core.v3.Address: socket_address. */
function address(r: Reader, end: number): NonNullable<WirePeer['address']> {
  const out: NonNullable<WirePeer['address']> = {};
  while (r.pos < end) {
    const tag = r.tag(end, S.address);
    if (tag >>> 3 === ADDRESS_SOCKET) out.socket_address = socketAddress(r, r.fieldEnd(end));
    else r.stepOver(tag, end, S.address);
  }
  return out;
}

/** config.core.v3.SocketAddress: address. */
function socketAddress(r: Reader, end: number): { address?: string } {
  const sa: { address?: string } = {};
  while (r.pos < end) {
    const tag = r.tag(end, S.socketAddress);
    if (tag >>> 3 === SOCKET_ADDRESS) sa.address = r.string(end);
    else r.stepOver(tag, end, S.socketAddress);
  }
  return sa;
}

/** AttributeContext.Request: http. */
function request(r: Reader, end: number): NonNullable<Attributes['request']> {
  const out: NonNullable<Attributes['request']> = {};
  while (r.pos < end) {
    const tag = r.tag(end, S.request);
    if (tag >>> 3 === REQUEST_HTTP) out.http = httpRequest(r, r.fieldEnd(end));
    else r.stepOver(tag, end, S.request);
  }
  return out;
}

function httpRequest(r: Reader, end: number): Http {
  const wanted = r.wanted;
  if (wanted === undefined) return httpFields(r, end, undefined);
  const start = r.pos;
  wanted.foldRanges.fill(-1);
  const h = httpFields(r, end, wanted);
  if (h.header_map === undefined) {
    foldInto(r, h);
    return h;
  }
  // The raw header_map form (Envoy's encode_raw_headers) as well: normalisation merges both
  // header forms, so keep every header (rare enough to decode twice).
  r.pos = start;
  return httpFields(r, end, undefined);
}

function httpFields(r: Reader, end: number, wanted: WantedHeaders | undefined): Http {
  const h: Http = {};
  while (r.pos < end) {
    const tag = r.tag(end, S.httpRequest);
    switch (tag >>> 3) {
      case H_ID:
        h.id = r.string(end);
        break;
      case H_METHOD:
        h.method = r.interned(end, SHORT_VALUES);
        break;
      case H_HEADERS:
        h.headers = wanted === undefined ? mapEntry(r, r.fieldEnd(end), h.headers ?? emptyMap()) : wantedEntry(r, r.fieldEnd(end), h.headers ?? emptyMap(), wanted.table, wanted.fold);
        break;
      case H_PATH:
        h.path = r.string(end);
        break;
      case H_HOST:
        h.host = r.string(end);
        break;
      case H_SCHEME:
        h.scheme = r.interned(end, SHORT_VALUES);
        break;
      case H_QUERY:
        h.query = r.string(end);
        break;
      case H_HEADER_MAP:
        h.header_map = headerMap(r, r.fieldEnd(end));
        break;
      default:
        r.stepOver(tag, end, S.httpRequest);
    }
  }
  return h;
}

/** config.core.v3.HeaderMap: repeated HeaderValue headers. */
function headerMap(r: Reader, end: number): { headers: WireHeaderValue[] } {
  const headers: WireHeaderValue[] = [];
  while (r.pos < end) {
    const tag = r.tag(end, S.headerMap);
    if (tag >>> 3 === HEADER_MAP_HEADERS) headers.push(headerValue(r, r.fieldEnd(end)));
    else r.stepOver(tag, end, S.headerMap);
  }
  return { headers };
}

/** config.core.v3.HeaderValue: key, value, raw_value. */
function headerValue(r: Reader, end: number): WireHeaderValue {
  const hv: WireHeaderValue = {};
  while (r.pos < end) {
    const tag = r.tag(end, S.headerValue);
    switch (tag >>> 3) {
      case HV_KEY:
        hv.key = r.interned(end, HEADER_NAMES);
        break;
      case HV_VALUE:
        hv.value = r.string(end);
        break;
      case HV_RAW_VALUE:
        hv.raw_value = r.bytes(end);
        break;
      default:
        r.stepOver(tag, end, S.headerValue);
    }
  }
  return hv;
}

/**
 * Maps inherit nothing, so a header named "__proto__" or "constructor" is an ordinary key (a
 * plain object would drop the first and invent the second). A constructor whose prototype is
 * itself prototype-less gives that safety without Object.create(null)'s dictionary mode: the
 * objects stay in V8's fast mode and share a hidden class across requests (and, once the wanted
 * headers bound the names, the shapes are few).
 */
function StringMap(): void {}
StringMap.prototype = Object.create(null) as object;

function emptyMap(): Record<string, string> {
  return new (StringMap as unknown as new () => Record<string, string>)();
}

/** One map<string, string> entry {key, value}; absent parts are ''. */
function mapEntry(r: Reader, end: number, into: Record<string, string>): Record<string, string> {
  let key = '';
  let value = '';
  while (r.pos < end) {
    const tag = r.tag(end, MAP_ENTRY);
    const field = tag >>> 3;
    if (field === ENTRY_KEY) key = r.interned(end, HEADER_NAMES);
    else if (field === ENTRY_VALUE) value = r.string(end);
    else r.stepOver(tag, end, MAP_ENTRY);
  }
  into[key] = value;
  return into;
}


/** As mapEntry, for a key in `wanted` only: any other entry is stepped over without a string. */
function wantedEntry(r: Reader, end: number, into: Record<string, string>, wanted: NameTable, fold: FoldTable): Record<string, string> {
  // The last key field decides, as in mapEntry; protobuf allows the value to come first.
  let keyStart = -1;
  let keyEnd = -1;
  let valueStart = 0;
  let valueEnd = 0;
  while (r.pos < end) {
    const tag = r.tag(end, HEADERS_ENTRY);
    const field = tag >>> 3;
    if (field === ENTRY_KEY) {
      keyEnd = r.fieldEnd(end);
      keyStart = r.pos;
      r.pos = keyEnd;
    } else if (field === ENTRY_VALUE) {
      valueEnd = r.fieldEnd(end);
      valueStart = r.pos;
      r.pos = valueEnd;
    } else r.stepOver(tag, end, HEADERS_ENTRY);
  }
  if (keyStart < 0) return into;
  const slot = lookup(r.buf, keyStart, keyEnd, fold);
  if (slot !== undefined) {
    const folds = r.wanted!.foldRanges;
    folds[2 * slot] = valueStart;
    folds[2 * slot + 1] = valueEnd;
    return into;
  }
  const key = lookup(r.buf, keyStart, keyEnd, wanted);
  if (key !== undefined) into[key] = r.slice(valueStart, valueEnd);
  return into;
}

/** A folded header's value ('' when absent), interned through `table` when given. */
function folded(r: Reader, slot: number, table?: NameTable): string {
  const folds = r.wanted!.foldRanges;
  const start = folds[2 * slot]!;
  if (start < 0) return '';
  const end = folds[2 * slot + 1]!;
  return (table && lookup(r.buf, start, end, table)) ?? r.slice(start, end);
}

/** Fills an empty field from its header, as normalizeCheckRequest's `field || header` would. */
function foldInto(r: Reader, h: Http): void {
  if (!h.id) h.id = folded(r, FOLD.id);
  if (!h.method) h.method = folded(r, FOLD.method, SHORT_VALUES);
  if (!h.path) h.path = folded(r, FOLD.path);
  if (!h.host) h.host = folded(r, FOLD.authority) || folded(r, FOLD.host);
  if (!h.scheme) h.scheme = folded(r, FOLD.scheme, SHORT_VALUES);
}
