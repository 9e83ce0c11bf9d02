import { benchConfig } from '../lib/config.js';
import { checkOnly, median } from '../lib/context.js';
import { pairedRatio, ratioRange } from '../lib/stats.js';
import { writeBody } from '../lib/h2load.js';
import { benchRequest } from '../lib/requests.js';
import { mintToken, userClaims } from '../lib/tokens.js';
import type { Scenario } from '../lib/scenario.js';
import { grpcFrame } from '../lib/wire.js';

/** The demo policy plus a route for /api/orders with a role, a scope and two CEL conditions. */
export function conditionsConfig(decisionLog: 'all' | 'deny' | 'none') {
  const c = benchConfig({ decisionLog }) as { policy: { routes: Record<string, unknown>[] } };
  // Replaces the demo's /api/orders route: a second one would be shadowed, which check-config refuses.
  c.policy.routes = c.policy.routes.filter((r) => r.prefix !== '/api/orders');
  c.policy.routes.unshift({
    prefix: '/api/orders',
    resource: 'orders',
    require: { roles_any: ['shop-user', 'orders-admin'], scopes_all: ['orders:read'] },
    when: ['request.headers["x-tenant"] == claims.tenant', 'request.method != "DELETE" || "orders-admin" in identity.roles'],
  });
  return c as ReturnType<typeof benchConfig>;
}

export const conditionClaims = (sub: string) => userClaims(sub, { roles: ['shop-user'], scope: 'openid orders:read', tenant: 'acme' });

export const allowCachedConditions: Scenario = {
  name: 'allow-cached-conditions',
  title: 'Allow, cached token, full policy plus a role, a scope and two CEL conditions',
  description:
    'As allow-cached-memory, with GET /api/orders matched by a route that requires a role (roles_any) and a scope (scopes_all) and two CEL `when` conditions (tenant header equals the tenant claim; DELETE needs orders-admin). The plain full-policy server runs in the same rounds.',
  async run(ctx) {
    const token = mintToken('RS256', conditionClaims('alice'));
    const req = benchRequest({ token, headers: { 'x-tenant': 'acme' } });
    const body = writeBody(ctx.opts.workDir, 'allow-cached-conditions', grpcFrame(req));
    const baseline = await ctx.startBaseline();
    const server = await ctx.startServer('zt-authz (conditions)', conditionsConfig(ctx.opts.decisionLog));
    const plain = await ctx.startServer('zt-authz (memory)', benchConfig({ decisionLog: ctx.opts.decisionLog }));
    // The conditions are really evaluated: another tenant is denied by them.
    await ctx.expectReasons(server, [
      { name: 'cached allow', req, reason: 'allowed' },
      { name: 'other tenant', req: benchRequest({ token, headers: { 'x-tenant': 'globex' } }), reason: 'condition_failed' },
      { name: 'no scope', req: benchRequest({ token: mintToken('RS256', userClaims('bob', { roles: ['shop-user'], tenant: 'acme' })), headers: { 'x-tenant': 'acme' } }), reason: 'scope_insufficient' },
    ]);
    await ctx.expectReasons(plain, [{ name: 'cached allow', req, reason: 'allowed' }]);
    const run = await ctx.interleavedH2load(baseline, [server, plain], body);
    await plain.stop();
    await server.stop();
    await baseline.stop();
    const ratio = pairedRatio(run.baseline, run.servers[0]!);
    const vsPlain = pairedRatio(run.servers[1]!, run.servers[0]!);
    return {
      name: this.name,
      title: this.title,
      description: this.description,
      throughput: {
        server: median(run.servers[0]!),
        baseline: median(run.baseline),
        ratio,
        rounds: run.baseline.map((b, i) => ({ baseline: b, server: run.servers[0]![i]! })),
        generator: 'h2load',
      },
      others: [{ label: 'full policy without require/when, same rounds', reqPerSec: median(run.servers[1]!), ratio: pairedRatio(run.baseline, run.servers[1]!) }],
      decisions: [checkOnly('allowed', run.decisions[0]!, run.measured[0]!), checkOnly('allowed', run.decisions[1]!, run.measured[1]!)],
      figures: [{ label: 'with require + 2 conditions / without', value: vsPlain, unit: 'x' }],
      targets: [{ name: 'require + 2 CEL conditions vs no-op baseline', value: ratio, target: '>= 0.90x', met: ratio >= 0.9 }],
      commands: run.commands,
      notes: [`ratio: median of per-round ratios (${ratioRange(run.baseline, run.servers[0]!)})`],
    };
  },
};
