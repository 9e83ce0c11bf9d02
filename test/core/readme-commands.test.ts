import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/wire/protos.js';
import { CLI, runCli, startServe, type ServeProcess } from '../helpers/cli.js';
import { freePort } from '../helpers/redis.js';
import { waitFor } from '../helpers/server.js';

/**
 * Runs every command the README shows in its Quick start, CLI and Configuration sections against
 * the built CLI, so the README cannot drift from what the commands do. The default ports are
 * swapped for free ones through ZT_AUTHZ_GRPC / ZT_AUTHZ_HTTP, as the README says to.
 */
const ROOT = packageRoot();
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

function section(title: string): string {
  const start = README.indexOf(`\n## ${title}\n`);
  if (start === -1) throw new Error(`README has no section "${title}"`);
  const end = README.indexOf('\n## ', start + 4);
  return README.slice(start, end === -1 ? undefined : end);
}

function blocks(text: string, lang: string): string[] {
  const re = new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g');
  return [...text.matchAll(re)].map((m) => m[1]!);
}

interface Command {
  readonly line: string;
  readonly comment: string;
}

/** Logical lines (backslash continuations joined), each with its trailing `# comment`. */
function commands(block: string): Command[] {
  const out: Command[] = [];
  let pending = '';
  for (const raw of block.split('\n')) {
    const line = pending + raw;
    if (line.endsWith('\\')) {
      pending = line.slice(0, -1);
      continue;
    }
    pending = '';
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    const m = /^(.*?)\s+#\s(.*)$/.exec(line);
    out.push(m ? { line: m[1]!.trim(), comment: m[2]!.trim() } : { line: line.trim(), comment: '' });
  }
  return out;
}

let grpcAddr: string;
let httpAddr: string;
let server: ServeProcess | undefined;
const work = mkdtempSync(join(tmpdir(), 'zt-readme-'));

function localise(line: string): string {
  return line
    .replaceAll('node dist/src/cli/main.js', `"${process.execPath}" "${CLI}"`)
    .replaceAll(' deploy/', ` ${ROOT}/deploy/`)
    .replaceAll('127.0.0.1:9191', grpcAddr)
    .replaceAll('127.0.0.1:8181', httpAddr);
}

/** One bash per block, so variables carry from line to line; each line's output and status is fenced. */
function runBlock(cmds: readonly Command[]): { out: string; rc: number }[] {
  const script = cmds.map((c, i) => `echo "@@@begin ${i}"\n${localise(c.line)}\necho "@@@rc ${i} $?"`).join('\n');
  const r = spawnSync('bash', ['-c', script], { cwd: work, encoding: 'utf8', timeout: 120_000, env: { ...process.env, ZT_AUTHZ_CONFIG: '' } });
  return cmds.map((_, i) => {
    const begin = r.stdout.indexOf(`@@@begin ${i}\n`);
    const m = new RegExp(`@@@rc ${i} (\\d+)`).exec(r.stdout);
    if (begin === -1 || !m) throw new Error(`command ${i} did not run; stderr: ${r.stderr}`);
    return { out: r.stdout.slice(begin + `@@@begin ${i}\n`.length, m.index), rc: Number(m[1]) };
  });
}

function expectAsDocumented(c: Command, res: { out: string; rc: number }): void {
  const what = `${c.line}  # ${c.comment}\n--- output:\n${res.out}`;
  const verdict = /^(ALLOW|DENY)\b\s*([a-z_]+)?/.exec(c.comment);
  if (verdict) {
    expect(res.rc, what).toBe(verdict[1] === 'ALLOW' ? 0 : 3);
    expect(res.out, what).toMatch(new RegExp(`^${verdict[1]}${verdict[2] ? ` ${verdict[2]}` : ''}`));
    return;
  }
  expect(res.rc, what).toBe(0);
  if (/^OK\b/.test(c.comment)) expect(res.out, what).toMatch(/: OK \(policy hash [0-9a-f]{12}\)/);
}

beforeAll(async () => {
  [grpcAddr, httpAddr] = (await Promise.all([freePort(), freePort()])).map((p) => `127.0.0.1:${p}`) as [string, string];
});
afterAll(async () => {
  server?.proc.kill('SIGTERM');
  await server?.exited;
});

// Each test runs a dozen CLI processes one after another: on a busy 2-core machine that takes a while.
describe('README Quick start', { timeout: 180_000 }, () => {
  const [setup, tryIt, ...rest] = blocks(section('Quick start'), 'sh');

  it('has the two blocks this test knows: setup, then Try it', () => {
    expect(setup).toBeDefined();
    expect(tryIt).toBeDefined();
    expect(rest).toEqual([]);
  });

  it('npm ci / npm start / npm test are the package scripts it describes; npm start serves on the ports ZT_AUTHZ_GRPC/HTTP name', async () => {
    const lines = commands(setup!).map((c) => c.line);
    expect(lines).toEqual(['npm ci && npm start', 'npm test']);
    expect(existsSync(join(ROOT, 'package-lock.json'))).toBe(true); // what npm ci installs from
    expect(PKG.scripts.test).toContain('vitest run'); // npm test would run this very test: not run here
    // npm start = build, then `node dist/src/cli/main.js serve`: the build is what this test runs against.
    expect(PKG.scripts.start).toBe('npm run build --silent && node dist/src/cli/main.js serve');
    // startServe passes --grpc/--http 127.0.0.1:0; the env must lose to them, and the README's own env is what we test next.
    server = await startServeWithEnv();
    expect(server.grpcAddress).toBe(grpcAddr);
    expect(server.httpAddress).toBe(httpAddr);
    const srv = server;
    await waitFor(() => srv.logs.some((l) => String(l.msg).includes('DEVELOPMENT MODE')), 10_000, 'the development-mode warning');
  });

  it('every Try-it command runs and answers as its comment says', async () => {
    expect(server, 'the npm start equivalent runs').toBeDefined();
    await waitReady();
    const cmds = commands(tryIt!);
    expect(cmds[0]!.line).toBe('export ZT_AUTHZ_GRPC=127.0.0.1:9191 ZT_AUTHZ_HTTP=127.0.0.1:8181');
    const results = runBlock(cmds);
    cmds.forEach((c, i) => expectAsDocumented(c, results[i]!));
    const curl = results[cmds.findIndex((c) => c.line.startsWith('curl'))]!;
    expect(curl.out).toContain('"ready":true');
    expect(curl.out).toContain('zt_authz_decisions_total');
  });
});

describe('README CLI section', { timeout: 180_000 }, () => {
  const cli = section('CLI');

  it('every option in the synopsis is in that command’s --help', async () => {
    const synopsis = blocks(cli, '')[0]!;
    const entries: { cmd: string; text: string }[] = [];
    let version = '';
    for (const line of synopsis.split('\n')) {
      if (line.startsWith('zt-authz --version')) {
        version = line;
        continue;
      }
      const m = /^zt-authz ([a-z-]+)/.exec(line);
      if (m) entries.push({ cmd: m[1]!, text: line });
      else if (line.trim() && entries.length) entries[entries.length - 1]!.text += line;
    }
    expect(entries.map((e) => e.cmd)).toEqual(['serve', 'check-config', 'config-schema', 'demo-config', 'explain', 'check', 'token', 'suspend']);
    const admins = ['unsuspend', 'block', 'unblock', 'risk', 'unrisk', 'list'];
    const helps = await Promise.all([...entries.map((e) => e.cmd), ...admins].map((c) => helpOf(c)));
    entries.forEach((e, i) => {
      const help = helps[i]!;
      expect(help.code, e.cmd).toBe(0);
      for (const flag of e.text.replace(/#.*$/, '').match(/--[a-z-]+/g) ?? []) {
        if (flag === '--help') continue;
        expect(help.stdout, `${e.cmd} --help mentions ${flag}`).toContain(flag);
      }
    });
    admins.forEach((a, i) => expect(helps[entries.length + i]!.stdout).toContain(`zt-authz ${a}`));
    // The synopsis' version line, against what the command prints.
    const v = runCli(['--version']);
    expect(v.code).toBe(0);
    expect(version).toMatch(/# e\.g\. zt-authz \d+\.\d+\.\d+ \(node v[\d.]+\)/);
    expect(v.stdout.trim()).toMatch(/^zt-authz \d+\.\d+\.\d+ \(node v[\d.]+\)$/);
  });

  it('every environment variable in the table is one the code reads', () => {
    const vars = [...cli.matchAll(/^\| `(ZT_AUTHZ_[A-Z_]+)`/gm)].map((m) => m[1]!);
    expect(vars.length).toBeGreaterThanOrEqual(7);
    const sources = spawnSync('grep', ['-rhoE', 'ZT_AUTHZ_[A-Z_]+', join(ROOT, 'src'), join(ROOT, 'deploy/Dockerfile')], { encoding: 'utf8' }).stdout;
    for (const v of vars) expect(sources, v).toContain(v);
  });

  it('every example command runs and answers as its comment says', () => {
    for (const block of blocks(cli, 'sh')) {
      const cmds = commands(block);
      const results = runBlock(cmds);
      cmds.forEach((c, i) => expectAsDocumented(c, results[i]!));
    }
  });
});

describe('README Configuration section', { timeout: 180_000 }, () => {
  it('every command runs', () => {
    const sh = blocks(section('Configuration'), 'sh');
    expect(sh.length).toBeGreaterThan(0);
    for (const block of sh) {
      const cmds = commands(block);
      const results = runBlock(cmds);
      cmds.forEach((c, i) => expectAsDocumented(c, results[i]!));
    }
    // The schema line the README shows is what an editor reads.
    expect(readFileSync(join(work, 'config.yaml'), 'utf8')).toMatch(/^# yaml-language-server: \$schema=\.\/zt-authz\.schema\.json\n/);
  });
});

function helpOf(cmd: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, cmd, '--help']);
    let stdout = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.on('exit', (code) => resolve({ code, stdout }));
  });
}

/** `npm start`'s server (the built CLI's serve), on free ports given the documented way: ZT_AUTHZ_GRPC / ZT_AUTHZ_HTTP. */
function startServeWithEnv(): Promise<ServeProcess> {
  return startServe([], { ZT_AUTHZ_GRPC: grpcAddr, ZT_AUTHZ_HTTP: httpAddr }, { noPortFlags: true });
}

async function waitReady(): Promise<void> {
  const until = Date.now() + 15_000;
  while (Date.now() < until) {
    const ok = await fetch(`http://${httpAddr}/readyz`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('server not ready');
}

