import type { WireCheckRequest, WireHeaderValue, WirePeer } from './check-request.js';
import { FOLD, nameTable, type ByteTable, type FoldTable, type NameTable, type WantedHeaders } from './wanted-headers.js';

/**
 * Decodes, straight from the protobuf bytes, only the parts of a CheckRequest that the checks read
 * (see WireCheckRequest and normalizeCheckRequest); everything else is stepped over without being
 * materialised. Decoding was the largest single cost of a cached Check, and most of it went to
 * fields nothing reads (destination, time, protocol).
 *
 * Field numbers come from proto/ (attribute_context.proto, external_auth.proto, core/v3/address.proto
 * and base.proto), which test/core/proto-wire.test.ts proves identical to Envoy's own; and
 * test/core/wire-decode.test.ts checks this decoder against protobufjs on generated and mutated
 * requests. A repeated singular field keeps the last value, and a map keeps the last value per
 * key, as in protobufjs. Unlike protobufjs it is strict: a varint, length or field that runs past
 * the end of its enclosing message, field number 0, a known field with a wire type other than its
 * declared one (protobufjs reads those as declared and loses its place), wire types 4, 6 and 7,
 * and groups nested deeper than MAX_GROUP_DEPTH throw WireDecodeError (which becomes an explicit
 * request_invalid deny).
 */
export class WireDecodeError extends Error {}

const MAX_GROUP_DEPTH = 32;

/** Header names Envoy and Istio send on nearly every request. */
const HEADER_NAMES = nameTable([
  ':authority', ':method', ':path', ':scheme', 'host', 'user-agent', 'accept', 'accept-encoding', 'accept-language',
  'authorization', 'cookie', 'content-type', 'content-length', 'origin', 'referer', 'x-request-id', 'x-forwarded-for',
  'x-forwarded-proto', 'x-forwarded-client-cert', 'x-envoy-attempt-count', 'x-envoy-external-address',
  'x-envoy-internal', 'x-envoy-expected-rq-timeout-ms', 'traceparent', 'tracestate', 'x-b3-traceid', 'x-b3-spanid',
  'x-b3-parentspanid', 'x-b3-sampled',
]);

const SHORT_VALUES = nameTable(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'http', 'https']);

/**
 * Declared wire types of the known fields of each message the decoder walks (proto/, the same
 * files as Envoy's; 0 varint, 2 length-delimited; -1 not a field). A known field on the wire with
 * another wire type is malformed: protobufjs would read it as the declared type anyway and lose
 * its place, and what the checks saw would then depend on the decoder.
 */
function wireTypes(fields: Record<number, 0 | 2>): Int8Array {
  const t = new Int8Array(Math.max(...Object.keys(fields).map(Number)) + 1).fill(-1);
  for (const [f, wt] of Object.entries(fields)) t[Number(f)] = wt;
  return t;
}
const LEN_FIELDS = (...fields: number[]) => Object.fromEntries(fields.map((f) => [f, 2 as const]));
const WT = {
  checkRequest: wireTypes(LEN_FIELDS(1)),
  attributeContext: wireTypes(LEN_FIELDS(1, 2, 4, 10, 12)),
  peer: wireTypes(LEN_FIELDS(1, 2, 3, 4, 5)),
  address: wireTypes(LEN_FIELDS(1, 2)),
  socketAddress: wireTypes({ 1: 0, 2: 2, 3: 0, 4: 2, 5: 2, 6: 0 }),
  request: wireTypes(LEN_FIELDS(1, 2)),
  httpRequest: wireTypes({ ...LEN_FIELDS(1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13), 9: 0 }),
  headerMap: wireTypes(LEN_FIELDS(1)),
  headerValue: wireTypes(LEN_FIELDS(1, 2, 3)),
  mapEntry: wireTypes(LEN_FIELDS(1, 2)),
};

/** Buffer's own UTF-8 decoder without toString's argument handling (protobufjs calls it too). */
type Utf8Sliceable = Buffer & { utf8Slice(start: number, end: number): string };

class Reader {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    /** The headers map entries to keep and to fold; undefined keeps them all. */
    readonly wanted: WantedHeaders | undefined,
  ) {}

  /** The low 32 bits of a varint of at most 10 bytes, which must end before `end`. */
  varint(end: number): number {
    const buf = this.buf;
    let value = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) throw new WireDecodeError('truncated varint');
      const b = buf[this.pos++]!;
      if (i < 5) value = (value | ((b & 127) << (7 * i))) >>> 0;
      if (b < 128) return value;
    }
    throw new WireDecodeError('varint longer than 10 bytes');
  }

  /**
   * A field key. Field number 0 does not exist, and a known field (in `known`) must come with its
   * declared wire type; protobufjs reads past either differently than we would.
   */
  tag(end: number, known?: Int8Array): number {
    const t = this.varint(end);
    const field = t >>> 3;
    if (field === 0) throw new WireDecodeError('field number 0');
    if (known !== undefined && field < known.length) {
      const wt = known[field]!;
      if (wt !== -1 && wt !== (t & 7)) throw new WireDecodeError(`field ${field} with wire type ${t & 7}, declared ${wt}`);
    }
    return t;
  }

  /** Reads a length prefix and returns where that field ends. */
  fieldEnd(end: number): number {
    const len = this.varint(end);
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
        if (depth >= MAX_GROUP_DEPTH) throw new WireDecodeError('groups nested too deep');
        for (;;) {
          const wt = this.tag(end) & 7;
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
    const tag = r.tag(end, WT.checkRequest);
    if (tag >>> 3 === 1) msg.attributes = attributeContext(r, r.fieldEnd(end));
    else r.skipField(tag & 7, end);
  }
  return msg;
}

type Attributes = NonNullable<WireCheckRequest['attributes']>;
type Http = NonNullable<NonNullable<Attributes['request']>['http']>;

function attributeContext(r: Reader, end: number): Attributes {
  const a: Attributes = {};
  while (r.pos < end) {
    const tag = r.tag(end, WT.attributeContext);
    switch (tag >>> 3) {
      case 1:
        a.source = peer(r, r.fieldEnd(end));
        break;
      case 4:
        a.request = request(r, r.fieldEnd(end));
        break;
      case 10:
        a.context_extensions = mapEntry(r, r.fieldEnd(end), a.context_extensions ?? emptyMap());
        break;
      default:
        r.skipField(tag & 7, end);
    }
  }
  return a;
}

/** AttributeContext.Peer: address (1) and principal (4). */
function peer(r: Reader, end: number): WirePeer {
  const p: WirePeer = {};
  while (r.pos < end) {
    const tag = r.tag(end, WT.peer);
    switch (tag >>> 3) {
      case 1:
        p.address = address(r, r.fieldEnd(end));
        break;
      case 4:
        p.principal = r.string(end);
        break;
      default:
        r.skipField(tag & 7, end);
    }
  }
  return p;
}

/** config.core.v3.Address: socket_address (1). */
function address(r: Reader, end: number): NonNullable<WirePeer['address']> {
  const out: NonNullable<WirePeer['address']> = {};
  while (r.pos < end) {
    const tag = r.tag(end, WT.address);
    if (tag >>> 3 === 1) out.socket_address = socketAddress(r, r.fieldEnd(end));
    else r.skipField(tag & 7, end);
  }
  return out;
}

/** config.core.v3.SocketAddress: address (2). */
function socketAddress(r: Reader, end: number): { address?: string } {
  const sa: { address?: string } = {};
  while (r.pos < end) {
    const tag = r.tag(end, WT.socketAddress);
    if (tag >>> 3 === 2) sa.address = r.string(end);
    else r.skipField(tag & 7, end);
  }
  return sa;
}

/** AttributeContext.Request: http (2). */
function request(r: Reader, end: number): NonNullable<Attributes['request']> {
  const out: NonNullable<Attributes['request']> = {};
  while (r.pos < end) {
    const tag = r.tag(end, WT.request);
    if (tag >>> 3 === 2) out.http = httpRequest(r, r.fieldEnd(end));
    else r.skipField(tag & 7, end);
  }
  return out;
}

function httpRequest(r: Reader, end: number): Http {
  const wanted = r.wanted;
  if (wanted === undefined) return httpFields(r, end, undefined);
  const start = r.pos;
  foldStart.fill(-1);
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
    const tag = r.tag(end, WT.httpRequest);
    switch (tag >>> 3) {
      case 1:
        h.id = r.string(end);
        break;
      case 2:
        h.method = r.interned(end, SHORT_VALUES);
        break;
      case 3:
        h.headers = wanted === undefined ? mapEntry(r, r.fieldEnd(end), h.headers ?? emptyMap()) : wantedEntry(r, r.fieldEnd(end), h.headers ?? emptyMap(), wanted.table, wanted.fold);
        break;
      case 4:
        h.path = r.string(end);
        break;
      case 5:
        h.host = r.string(end);
        break;
      case 6:
        h.scheme = r.interned(end, SHORT_VALUES);
        break;
      case 7:
        h.query = r.string(end);
        break;
      case 13:
        h.header_map = headerMap(r, r.fieldEnd(end));
        break;
      default:
        r.skipField(tag & 7, end);
    }
  }
  return h;
}

/** config.core.v3.HeaderMap: repeated HeaderValue headers (1). */
function headerMap(r: Reader, end: number): { headers: WireHeaderValue[] } {
  const headers: WireHeaderValue[] = [];
  while (r.pos < end) {
    const tag = r.tag(end, WT.headerMap);
    if (tag >>> 3 === 1) headers.push(headerValue(r, r.fieldEnd(end)));
    else r.skipField(tag & 7, end);
  }
  return { headers };
}

/** config.core.v3.HeaderValue: key (1), value (2), raw_value (3). */
function headerValue(r: Reader, end: number): WireHeaderValue {
  const hv: WireHeaderValue = {};
  while (r.pos < end) {
    const tag = r.tag(end, WT.headerValue);
    switch (tag >>> 3) {
      case 1:
        hv.key = r.interned(end, HEADER_NAMES);
        break;
      case 2:
        hv.value = r.string(end);
        break;
      case 3:
        hv.raw_value = r.bytes(end);
        break;
      default:
        r.skipField(tag & 7, end);
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

/** One map<string, string> entry {key 1, value 2}; absent parts are ''. */
function mapEntry(r: Reader, end: number, into: Record<string, string>): Record<string, string> {
  let key = '';
  let value = '';
  while (r.pos < end) {
    const tag = r.tag(end, WT.mapEntry);
    const field = tag >>> 3;
    if (field === 1) key = r.interned(end, HEADER_NAMES);
    else if (field === 2) value = r.string(end);
    else r.skipField(tag & 7, end);
  }
  into[key] = value;
  return into;
}

/**
 * Byte ranges of the folded headers of the HttpRequest being decoded (-1: absent). Module-level
 * because decoding is synchronous and this way a request allocates nothing for them.
 */
const foldStart = new Int32Array(FOLD.id + 1);
const foldEnd = new Int32Array(FOLD.id + 1);

/** As mapEntry, for a key in `wanted` only: any other entry is stepped over without a string. */
function wantedEntry(r: Reader, end: number, into: Record<string, string>, wanted: NameTable, fold: FoldTable): Record<string, string> {
  // The last key field decides, as in mapEntry; protobuf allows the value to come first.
  let keyStart = -1;
  let keyEnd = -1;
  let valueStart = 0;
  let valueEnd = 0;
  while (r.pos < end) {
    const tag = r.tag(end, WT.mapEntry);
    const field = tag >>> 3;
    if (field === 1) {
      keyEnd = r.fieldEnd(end);
      keyStart = r.pos;
      r.pos = keyEnd;
    } else if (field === 2) {
      valueEnd = r.fieldEnd(end);
      valueStart = r.pos;
      r.pos = valueEnd;
    } else r.skipField(tag & 7, end);
  }
  if (keyStart < 0) return into;
  const slot = lookup(r.buf, keyStart, keyEnd, fold);
  if (slot !== undefined) {
    foldStart[slot] = valueStart;
    foldEnd[slot] = valueEnd;
    return into;
  }
  const key = lookup(r.buf, keyStart, keyEnd, wanted);
  if (key !== undefined) into[key] = r.slice(valueStart, valueEnd);
  return into;
}

/** A folded header's value ('' when absent), interned through `table` when given. */
function folded(r: Reader, slot: number, table?: NameTable): string {
  const start = foldStart[slot]!;
  if (start < 0) return '';
  const end = foldEnd[slot]!;
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
