import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A free loopback port (closed again before returning; good enough for test processes). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface RedisProcess {
  readonly port: number;
  readonly url: string;
  /** The running redis-server's process id (a restart starts another). */
  readonly pid: number | undefined;
  /** Graceful stop (SIGTERM) and removal of the data directory. */
  stop(): Promise<void>;
  /** Sends a signal; SIGKILL simulates a crash. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGSTOP: the process keeps its sockets open but answers nothing (a "slow" Redis). */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Starts a fresh process on the same port (after kill/stop; the dataset is empty). */
  restart(): Promise<void>;
  /** redis-cli against this server; resolves with stdout. */
  cli(...args: string[]): Promise<string>;
  /**
   * While this server is down: runs another redis-server with the same options and data directory
   * on a free port, hands `write` a redis-cli for it, then shuts it down (saving as configured).
   * So data changes while no client of this port can see them happen, as while a sidecar is away.
   */
  offline(write: (cli: (...args: string[]) => Promise<string>) => Promise<void>): Promise<void>;
}

export interface StartRedisOptions {
  port?: number;
  extraArgs?: string[];
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** Starts a real redis-server on a free loopback port, persistence off, in its own temp dir. */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisProcess> {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'zt-redis-'));
  let proc: ChildProcess;

  const spawnOn = async (on: number) => {
    const args = ['--port', String(on), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(opts.extraArgs ?? [])];
    const p = spawn('redis-server', args, { stdio: 'ignore' });
    live.add(p);
    p.once('exit', () => live.delete(p));
    await waitFor(() => canConnect(on), 10_000, `redis-server on ${on}`);
    return p;
  };
  const launch = async () => {
    proc = await spawnOn(port);
  };

  const exited = (p: ChildProcess) =>
    p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once('exit', () => r()));

  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return proc.pid;
    },
    async stop() {
      const p = proc;
      p.kill('SIGCONT');
      p.kill('SIGTERM');
      await exited(p);
      rmSync(dir, { recursive: true, force: true });
    },
    async kill(signal = 'SIGKILL') {
      const p = proc;
      p.kill(signal);
      if (signal === 'SIGKILL' || signal === 'SIGTERM') await exited(p);
    },
    pause() {
      proc.kill('SIGSTOP');
    },
    resume() {
      proc.kill('SIGCONT');
    },
    async restart() {
      await exited(proc);
      await launch();
    },
    async cli(...args: string[]) {
      const { stdout } = await run('redis-cli', ['-p', String(port), ...args]);
      return stdout;
    },
    async offline(write) {
      await exited(proc);
      const on = await freePort();
      const p = await spawnOn(on);
      const cli = async (...args: string[]) => (await run('redis-cli', ['-p', String(on), ...args])).stdout;
      try {
        for (const until = Date.now() + 10_000; !(await cli('PING')).includes('PONG'); ) {
          if (Date.now() > until) throw new Error('the offline redis-server is still loading after 10 s');
          await new Promise((r) => setTimeout(r, 20));
        }
        await write(cli);
        await cli('SHUTDOWN');
      } finally {
        p.kill('SIGKILL');
        await exited(p);
      }
    },
  };
}

export interface RedisClusterProcess {
  readonly nodes: RedisProcess[];
  /** Seed nodes for ioredis Cluster / state.redis.cluster.nodes. */
  readonly seeds: { host: string; port: number }[];
  stop(): Promise<void>;
}

/** A local Redis Cluster of `masters` masters and no replicas, built with `redis-cli --cluster create`. */
export async function startRedisCluster(masters = 3): Promise<RedisClusterProcess> {
  const nodes: RedisProcess[] = [];
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(
        await startRedis({
          extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'],
        }),
      );
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
    await waitFor(
      async () => {
        const infos = await Promise.all(nodes.map((n) => n.cli('cluster', 'info')));
        return infos.every((i) => i.includes('cluster_state:ok'));
      },
      15_000,
      'cluster_state:ok',
    );
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw err;
  }
  return {
    nodes,
    seeds: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}

export interface SentinelProcess {
  readonly port: number;
  stop(): Promise<void>;
}

/** A Redis Sentinel (quorum 1, 1 s down-after) monitoring `127.0.0.1:masterPort` as `name`. */
export async function startRedisSentinel(masterPort: number, name = 'mymaster'): Promise<SentinelProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'zt-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  // Sentinel rewrites its own config file, so it lives in the temp dir.
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 5000`,
      '',
    ].join('\n'),
  );
  const p = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  live.add(p);
  p.once('exit', () => live.delete(p));
  await waitFor(() => canConnect(port), 10_000, `sentinel on ${port}`);
  return {
    port,
    async stop() {
      if (p.exitCode === null && p.signalCode === null) {
        const exited = new Promise<void>((r) => p.once('exit', () => r()));
        p.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls until `cond` holds; returns the elapsed ms. For "eventually" assertions, never for speed. */
export async function eventually(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<number> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return Date.now() - start;
}
