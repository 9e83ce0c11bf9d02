import { connect, type Socket } from 'node:net';

/**
 * A bare HTTP/2 client on a TCP socket that writes frames itself. node:http2 (nghttp2) obeys the
 * server's SETTINGS_MAX_CONCURRENT_STREAMS and queues extra requests, so it cannot show what the
 * server does to a client that ignores the limit; this one can.
 */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK literal header field without indexing, new name, no Huffman (RFC 7541 §6.2.2). */
function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'latin1');
  if (n.length > 126 || v.length > 126) throw new Error('header too long for this encoder');
  return Buffer.concat([Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v]);
}

/** The request HEADERS block of a gRPC call to `path`. */
export function grpcHeaderBlock(path: string, authority = 'zt-authz'): Buffer {
  return Buffer.concat([
    Buffer.from([0x83, 0x86]), // :method POST, :scheme http (static table 3 and 6)
    literal(':path', path),
    literal(':authority', authority),
    literal('content-type', 'application/grpc'),
    literal('te', 'trailers'),
  ]);
}

export interface ReceivedFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

export interface RawH2 {
  readonly socket: Socket;
  readonly frames: ReceivedFrame[];
  /** Resolves once the socket is closed by either side. */
  readonly closed: Promise<void>;
  write(buf: Buffer): boolean;
  /** Resolves with the first frame matching `pred`, or undefined after timeoutMs. */
  waitFor(pred: (f: ReceivedFrame) => boolean, timeoutMs: number): Promise<ReceivedFrame | undefined>;
  destroy(): void;
}

/** Connects, sends the preface and an empty SETTINGS, and acks the server's SETTINGS and PINGs. */
export function rawH2(host: string, port: number): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const frames: ReceivedFrame[] = [];
    const waiters = new Set<{ pred: (f: ReceivedFrame) => boolean; done: (f: ReceivedFrame | undefined) => void }>();
    let buf = Buffer.alloc(0);
    let onClose!: () => void;
    const closed = new Promise<void>((r) => (onClose = r));
    socket.on('close', () => {
      onClose();
      for (const w of waiters) w.done(undefined);
      waiters.clear();
    });
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const f: ReceivedFrame = { type: buf.readUInt8(3), flags: buf.readUInt8(4), streamId: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) };
        buf = buf.subarray(9 + len);
        frames.push(f);
        if (f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK)) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        if (f.type === FRAME.PING && !(f.flags & FLAG.ACK)) socket.write(frame(FRAME.PING, FLAG.ACK, 0, f.payload));
        for (const w of waiters) {
          if (w.pred(f)) {
            waiters.delete(w);
            w.done(f);
          }
        }
      }
    });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
      resolve({
        socket,
        frames,
        closed,
        write: (b) => socket.write(b),
        waitFor(pred, timeoutMs) {
          const hit = frames.find(pred);
          if (hit) return Promise.resolve(hit);
          if (socket.destroyed) return Promise.resolve(undefined);
          return new Promise((res) => {
            const w = {
              pred,
              done: (f: ReceivedFrame | undefined) => {
                clearTimeout(t);
                res(f);
              },
            };
            const t = setTimeout(() => {
              waiters.delete(w);
              res(undefined);
            }, timeoutMs);
            waiters.add(w);
          });
        },
        destroy: () => socket.destroy(),
      });
    });
  });
}

/** SETTINGS_MAX_CONCURRENT_STREAMS (id 3) from a SETTINGS payload, if present. */
export function maxConcurrentStreams(settings: Buffer): number | undefined {
  for (let i = 0; i + 6 <= settings.length; i += 6) if (settings.readUInt16BE(i) === 3) return settings.readUInt32BE(i + 2);
  return undefined;
}
