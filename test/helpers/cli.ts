import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/wire/protos.js';

/** The built CLI (npm test builds first; for a single file run `npm run build` beforehand). */
export const CLI = join(packageRoot(), 'dist/src/cli/main.js');

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface ServeProcess {
  proc: ChildProcessWithoutNullStreams;
  grpcAddress: string;
  httpAddress: string;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `zt-authz serve` as a real process on ephemeral ports and waits for its listening line. */
export function startServe(args: string[], env: NodeJS.ProcessEnv = {}, opts: { noPortFlags?: boolean } = {}): Promise<ServeProcess> {
  // noPortFlags: the caller names free ports through ZT_AUTHZ_GRPC / ZT_AUTHZ_HTTP instead.
  const ports = opts.noPortFlags ? [] : ['--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0'];
  const proc = spawn(process.execPath, [CLI, 'serve', ...ports, ...args], {
    env: { ...process.env, ...env },
  });
  const logs: Record<string, unknown>[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  let buffer = '';
  let stderr = '';
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error('serve did not start within 60 s; stderr: ' + stderr));
    }, 60_000);
    proc.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === 'zt-authz listening') {
            clearTimeout(timer);
            resolve({ proc, grpcAddress: String(entry.grpc), httpAddress: String(entry.http), logs, exited });
          }
        } catch {
          // not a log line
        }
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`serve exited early with ${code}; stderr: ${stderr}`));
    });
  });
}
