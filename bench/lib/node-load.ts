import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeLoadResult, NodeLoadSpec } from './node-load-child.js';
import { startNodeChild } from './proc.js';

const CHILD = fileURLToPath(new URL('./node-load-child.js', import.meta.url));

export interface NodeLoadRun {
  readonly result: NodeLoadResult;
  /** How many times each frame was sent (warm-up included). */
  readonly perFrame: Uint32Array;
  readonly latenciesUs?: Float64Array;
  readonly command: string;
}

export interface NodeLoadOptions {
  readonly connections: number;
  readonly concurrency: number;
  readonly requests: number;
  readonly warmup: number;
  readonly latencies?: boolean;
  readonly cpus: string | undefined;
  readonly workDir: string;
  readonly name: string;
  readonly progress?: (done: number, total: number) => void;
}

/** Writes the frames once per scenario; several runs (baseline, server) can share the file. */
export function writeFrames(workDir: string, name: string, frames: readonly Buffer[]): string {
  const file = join(workDir, `${name}.frames`);
  writeFileSync(file, Buffer.concat(frames as Buffer[]));
  return file;
}

export async function runNodeLoad(target: string, framesFile: string, o: NodeLoadOptions): Promise<NodeLoadRun> {
  const spec: NodeLoadSpec = {
    target,
    framesFile,
    connections: o.connections,
    concurrency: o.concurrency,
    requests: o.requests,
    warmup: o.warmup,
    latencies: o.latencies ?? false,
    progressEvery: Math.max(1000, Math.floor((o.requests + o.warmup) / 20)),
  };
  const specFile = join(o.workDir, `${o.name}.load.json`);
  writeFileSync(specFile, JSON.stringify(spec));
  const child = startNodeChild<NodeLoadResult>(CHILD, [specFile], {
    cpus: o.cpus,
    logFile: join(o.workDir, `${o.name}.load.log`),
    readyTimeoutMs: 30 * 60_000,
    onStderrLine: (line) => {
      const m = /^PROGRESS (\d+)\/(\d+)/.exec(line);
      if (m && o.progress) o.progress(Number(m[1]), Number(m[2]));
    },
  });
  try {
    const result = await child.ready;
    const raw = readFileSync(result.perFrameFile);
    const perFrame = new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    rmSync(result.perFrameFile, { force: true });
    let latenciesUs: Float64Array | undefined;
    if (result.latencyFile) {
      const lat = readFileSync(result.latencyFile);
      latenciesUs = new Float64Array(lat.buffer.slice(lat.byteOffset, lat.byteOffset + lat.byteLength));
      rmSync(result.latencyFile, { force: true });
    }
    const command = `node ${CHILD} ${specFile}`;
    return latenciesUs ? { result, perFrame, latenciesUs, command } : { result, perFrame, command };
  } finally {
    await child.stop();
  }
}
