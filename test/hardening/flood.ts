import { Worker } from 'node:worker_threads';

/**
 * Floods Check from a worker thread, so the flood's client work runs on the other core and not on
 * the event loop of the server under test. Raw node:http2 with pre-serialised gRPC frames keeps
 * the client cheap. The number of calls in flight is capped: past the server's capacity a flood
 * only builds a queue, and a bounded queue keeps the test about the sidecar, not about backlog.
 */
export interface FloodOptions {
  readonly address: string;
  /** gRPC frames (prefix + CheckRequest), cycled through. */
  readonly frames: readonly Buffer[];
  readonly ratePerS: number;
  readonly durationMs: number;
  readonly maxInFlight?: number;
  readonly connections?: number;
}

export interface FloodResult {
  readonly sent: number;
  readonly elapsedMs: number;
  /** grpc-status of each answered call (-1: stream error). */
  readonly statuses: number[];
  /** The CheckResponse bytes of calls answered with grpc-status 0. */
  readonly responses: Buffer[];
}

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const http2 = require('node:http2');
const { address, frames, ratePerS, durationMs, maxInFlight, connections } = workerData;
const sessions = Array.from({ length: connections }, () => { const s = http2.connect('http://' + address); s.on('error', () => {}); return s; });
const statuses = [];
const responses = [];
let sent = 0, inFlight = 0, i = 0;
const started = Date.now();
function one() {
  const s = sessions[sent % sessions.length];
  const frame = Buffer.from(frames[i++ % frames.length]);
  sent++; inFlight++;
  let status = -1; const chunks = [];
  let st;
  try {
    st = s.request({ ':method': 'POST', ':path': '/envoy.service.auth.v3.Authorization/Check', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '5S' });
  } catch { inFlight--; statuses.push(-1); return; }
  st.on('response', (h) => { if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']); });
  st.on('trailers', (h) => { if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']); });
  st.on('data', (c) => chunks.push(c));
  st.on('error', () => {});
  st.on('close', () => {
    inFlight--;
    statuses.push(status);
    if (status === 0) { const b = Buffer.concat(chunks); responses.push(b.subarray(5, 5 + b.readUInt32BE(1))); }
  });
  st.end(frame);
}
const perTick = Math.max(1, Math.round(ratePerS / 100));
const timer = setInterval(() => {
  if (Date.now() - started >= durationMs) {
    clearInterval(timer);
    const wait = setInterval(() => {
      if (inFlight > 0) return;
      clearInterval(wait);
      const elapsedMs = Date.now() - started;
      for (const s of sessions) s.close();
      parentPort.postMessage({ sent, elapsedMs, statuses, responses });
    }, 10);
    return;
  }
  for (let k = 0; k < perTick && inFlight < maxInFlight; k++) one();
}, 10);
`;

export function floodFromWorker(o: FloodOptions): Promise<FloodResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, {
      eval: true,
      workerData: {
        address: o.address,
        frames: o.frames.map((f) => new Uint8Array(f)),
        ratePerS: o.ratePerS,
        durationMs: o.durationMs,
        maxInFlight: o.maxInFlight ?? 500,
        connections: o.connections ?? 4,
      },
    });
    w.once('message', (m: { sent: number; elapsedMs: number; statuses: number[]; responses: Uint8Array[] }) => {
      void w.terminate();
      resolve({ sent: m.sent, elapsedMs: m.elapsedMs, statuses: m.statuses, responses: m.responses.map((r) => Buffer.from(r)) });
    });
    w.once('error', reject);
  });
}
