/**
 * Just enough of a protobuf writer to encode CheckResponse without building the object graph
 * proto-loader would convert (fromObject → Message → encode): a reused scratch buffer, length
 * prefixes patched in place, one exact-size copy out per message. Every field number used here
 * is below 16, so a tag is one byte.
 */
const LEN = 2;
const VARINT = 0;
const I64 = 1;
/** CheckResponse nests four deep at most. */
const MAX_DEPTH = 16;

export class PbWriter {
  private buf = Buffer.allocUnsafe(4096);
  private pos = 0;
  /** Where each open sub-message's length byte is; a typed stack, as `array.length = 0` is a runtime call. */
  private readonly starts = new Int32Array(MAX_DEPTH);
  private depth = 0;

  reset(): this {
    this.pos = 0;
    this.depth = 0;
    return this;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private varint(n: number): void {
    this.ensure(5);
    while (n > 127) {
      this.buf[this.pos++] = (n & 127) | 128;
      n >>>= 7;
    }
    this.buf[this.pos++] = n;
  }

  uint(field: number, value: number): this {
    if (value === 0) return this;
    this.ensure(1);
    this.buf[this.pos++] = (field << 3) | VARINT;
    this.varint(value);
    return this;
  }

  double(field: number, value: number): this {
    this.ensure(9);
    this.buf[this.pos++] = (field << 3) | I64;
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
    return this;
  }

  string(field: number, value: string): this {
    const n = value.length;
    if (n === 0) return this;
    if (n < 128) {
      // Header names, ids, reasons and subs are short ASCII: copying the char codes in JS beats
      // a call into C++ per string (Buffer#write showed in profiles). Any non-ASCII character
      // falls through to the UTF-8 path below, which rewrites the field from the tag on.
      this.ensure(2 + n);
      const buf = this.buf;
      const start = this.pos;
      let p = start + 2;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c > 127) break;
        buf[p++] = c;
      }
      if (i === n) {
        buf[start] = (field << 3) | LEN;
        buf[start + 1] = n;
        this.pos = p;
        return this;
      }
    }
    const len = Buffer.byteLength(value);
    this.ensure(1);
    this.buf[this.pos++] = (field << 3) | LEN;
    this.varint(len);
    this.ensure(len);
    this.buf.write(value, this.pos, len, 'utf8');
    this.pos += len;
    return this;
  }

  /** Pre-encoded bytes of whole fields (built once at startup). */
  raw(bytes: Uint8Array): this {
    const n = bytes.length;
    this.ensure(n);
    const buf = this.buf;
    const p = this.pos;
    // Keys and flags are a few bytes: a loop beats TypedArray#set's call overhead there.
    if (n <= 32) for (let i = 0; i < n; i++) buf[p + i] = bytes[i]!;
    else buf.set(bytes, p);
    this.pos = p + n;
    return this;
  }

  /** Opens a length-delimited sub-message; close it with end(). */
  begin(field: number): this {
    this.ensure(2);
    this.buf[this.pos++] = (field << 3) | LEN;
    // One byte reserved for the length: nearly every sub-message here is under 128 bytes.
    if (this.depth === MAX_DEPTH) throw new Error('PbWriter: sub-messages nested too deep');
    this.starts[this.depth++] = this.pos++;
    return this;
  }

  end(): this {
    if (this.depth === 0) throw new Error('PbWriter: end() without begin()');
    const start = this.starts[--this.depth]!;
    const len = this.pos - start - 1;
    if (len < 128) {
      this.buf[start] = len;
      return this;
    }
    const size = len < 16384 ? 2 : len < 2097152 ? 3 : 4;
    this.ensure(size - 1);
    this.buf.copyWithin(start + size, start + 1, this.pos);
    this.pos += size - 1;
    let p = start;
    let n = len;
    while (n > 127) {
      this.buf[p++] = (n & 127) | 128;
      n >>>= 7;
    }
    this.buf[p] = n;
    return this;
  }

  /** An exact-size copy: the scratch buffer is reused by the next message. */
  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    out.set(this.buf.subarray(0, this.pos));
    return out;
  }
}

/** Encodes fields once into a standalone buffer (for the constant parts of responses). */
export function preencode(write: (w: PbWriter) => void): Buffer {
  const w = new PbWriter();
  write(w);
  return w.finish();
}
