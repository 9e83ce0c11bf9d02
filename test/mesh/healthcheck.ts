import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Runs the Dockerfile's HEALTHCHECK script with a real Node against a real HTTP server answering
 * `status` (or against a closed port for 'down'), pointed there through ZT_AUTHZ_HEALTHCHECK_URL.
 * Resolves to the script's exit code; rejects if the server saw any request other than GET /healthz.
 */
export async function runHealthcheck(script: string, status: number | 'down'): Promise<number | null> {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.statusCode = status === 'down' ? 500 : status;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  if (status === 'down') await new Promise((resolve) => server.close(resolve));
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script], {
        env: { ...process.env, ZT_AUTHZ_HEALTHCHECK_URL: `http://127.0.0.1:${port}/healthz` },
        stdio: 'ignore',
      });
      child.on('error', reject);
      child.on('exit', resolve);
    });
    if (seen.some((r) => r !== 'GET /healthz')) throw new Error(`unexpected requests: ${seen.join(', ')}`);
    if (status !== 'down' && seen.length !== 1) throw new Error(`expected one GET /healthz, saw ${seen.length}`);
    return code;
  } finally {
    if (status !== 'down') await new Promise((resolve) => server.close(resolve));
  }
}
