import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchConfig } from '../../bench/lib/config.js';
import { parseMetrics } from '../../bench/lib/metrics.js';
import { startNodeChild, type Child } from '../../bench/lib/proc.js';
import type { ServerReady, ServerSpec } from '../../bench/lib/server-child.js';
import { mintToken, userClaims } from '../../bench/lib/tokens.js';
import { authzClient, checkRequest, responseHeader, type AuthzClient } from '../helpers/grpc.js';
import { DIST_BENCH, ensureBuilt } from './build.js';

const WORKERS = 2;
const CONNECTIONS = 6;

describe('--workers: a node:cluster of servers answers correct decisions', () => {
  let dir: string;
  let child: Child<ServerReady>;
  let ready: ServerReady;
  const clients: AuthzClient[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'zt-workers-'));
    const spec: ServerSpec = { config: benchConfig({ decisionLog: 'none' }), workers: WORKERS, seed: { suspend: ['mallory'], block: ['203.0.113.9'] } };
    writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
    child = startNodeChild<ServerReady>(join(DIST_BENCH, 'lib/server-child.js'), [join(dir, 'spec.json')], { cpus: undefined, logFile: join(dir, 'server.log'), readyTimeoutMs: 60_000 });
    ready = await child.ready;
    // A local subchannel pool per client gives each its own HTTP/2 connection, which the primary
    // hands to the workers round-robin.
    for (let i = 0; i < CONNECTIONS; i++) clients.push(authzClient(ready.grpc, { 'grpc.use_local_subchannel_pool': 1 }));
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await child?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every worker enforces the policy and its seeded state, and /metrics sums all workers', async () => {
    const alice = checkRequest({ token: mintToken('RS256', userClaims('alice')) });
    const mallory = checkRequest({ token: mintToken('RS256', userClaims('mallory')) });
    const blocked = checkRequest({ token: mintToken('ES256', userClaims('bob')), sourceIp: '203.0.113.9' });
    const noToken = checkRequest({});
    const before = parseMetrics(await (await fetch(`http://${ready.http}/metrics`)).text());
    const prefixes = new Set<string>();
    const reasons: Record<string, number> = {};
    const rounds = 10;
    for (let r = 0; r < rounds; r++) {
      await Promise.all(
        clients.map(async (c) => {
          for (const [req, want] of [[alice, 'allowed'], [mallory, 'user_suspended'], [blocked, 'ip_blocked'], [noToken, 'token_missing']] as const) {
            const res = await c.check(req);
            expect(res.rpcCode).toBe(0);
            const reason = res.response?.dynamic_metadata?.fields?.reason;
            const got = reason && 'stringValue' in reason ? reason.stringValue : undefined;
            expect(got).toBe(want);
            reasons[want] = (reasons[want] ?? 0) + 1;
            const id = responseHeader(res.response, 'x-auth-decision-id');
            expect(id).toBeTruthy();
            prefixes.add(id!.slice(0, id!.indexOf('-')));
          }
        }),
      );
    }
    // Decision ids carry a per-process prefix: more than one prefix means more than one worker answered.
    expect(prefixes.size).toBe(WORKERS);
    const after = parseMetrics(await (await fetch(`http://${ready.http}/metrics`)).text());
    for (const [reason, n] of Object.entries(reasons)) {
      expect((after.decisions.get(reason) ?? 0) - (before.decisions.get(reason) ?? 0)).toBe(n);
    }
    expect(reasons.allowed).toBe(rounds * CONNECTIONS);
  });

  it('drains every worker on SIGTERM and exits 0', async () => {
    child.process.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  });
});
