import { loadConfig } from '../config/load.js';
import { DecisionEngine } from '../decision/engine.js';
import { createDecisionIds } from '../decision/ids.js';
import { RemediationScope } from '../decision/remediation-scope.js';
import type { CheckTrace, NormalizedRequest } from '../model.js';
import { createAuthenticator } from '../identity/index.js';
import { compileCidrs } from '../normalize/cidr.js';
import { normalizeIp } from '../normalize/client-ip.js';
import { normalizePath } from '../normalize/path.js';
import { silentLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { compilePolicy } from '../policy/index.js';
import { REASONS } from '../reasons.js';
import { createStateStore } from '../state/index.js';
import { parse, usageFailed } from './args.js';

const USAGE = `Usage: zt-authz explain [--config FILE] [--token JWT] [--method M] [--path P] [--host H]
                        [--ip IP] [--principal SPIFFE_ID] [--header k=v]... [--resource NAME]
                        [--at ISO-8601] [--json]

Evaluates one request exactly as the server would, without running a server, and prints the
decision and the verdict of every check in order. Loads the keys and state the config names.
`;

export async function runExplain(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parse(argv, {
      config: { type: 'string' },
      token: { type: 'string' },
      method: { type: 'string', default: 'GET' },
      path: { type: 'string', default: '/' },
      host: { type: 'string', default: 'localhost' },
      ip: { type: 'string', default: '' },
      principal: { type: 'string', default: '' },
      header: { type: 'string', multiple: true, default: [] },
      resource: { type: 'string' },
      at: { type: 'string' },
      json: { type: 'boolean', default: false },
    }));
  } catch (err) {
    return usageFailed(err, USAGE);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const loaded = loadConfig({ file: values.config });
  if (!loaded.ok) {
    process.stderr.write(`invalid config ${loaded.source}:\n${loaded.errors.map((e) => `  - ${e}`).join('\n')}\n`);
    return 1;
  }
  const nowMs = values.at ? Date.parse(values.at) : Date.now();
  if (Number.isNaN(nowMs)) {
    process.stderr.write('--at must be an ISO-8601 time\n');
    return 2;
  }
  const headers: Record<string, string> = {};
  for (const h of values.header) {
    const eq = h.indexOf('=');
    if (eq <= 0) {
      process.stderr.write(`--header must be k=v, got "${h}"\n`);
      return 2;
    }
    const key = h.slice(0, eq).trim().toLowerCase();
    const prev = headers[key];
    headers[key] = prev === undefined ? h.slice(eq + 1) : `${prev},${h.slice(eq + 1)}`;
  }
  const config = loaded.config;
  const tokenHeader = config.identity.issuers[0]?.token_header ?? 'authorization';
  const tokenScheme = config.identity.issuers[0]?.token_scheme ?? 'Bearer';
  if (values.token) headers[tokenHeader] = tokenScheme ? `${tokenScheme} ${values.token}` : values.token;

  let split;
  try {
    split = normalizePath(values.path);
  } catch (err) {
    process.stderr.write(`--path: ${(err as Error).message}\n`);
    return 2;
  }
  const req: NormalizedRequest = {
    method: values.method.toUpperCase(),
    path: split.path,
    rawPath: values.path,
    query: split.query,
    host: values.host.toLowerCase(),
    scheme: 'https',
    headers,
    clientIp: normalizeIp(values.ip),
    clientIpSource: 'peer',
    principal: values.principal,
    contextExtensions: values.resource ? { resource: values.resource } : {},
    requestId: 'explain',
  };

  const deps = { logger: silentLogger, metrics: createMetrics() };
  const authenticator = createAuthenticator(config.identity, deps);
  const state = createStateStore(config.state, deps);
  await Promise.all([authenticator.start(), state.start()]);
  const policy = compilePolicy(config.policy);
  const engine = new DecisionEngine({ authenticator: () => authenticator, state, policy: () => policy, nextId: createDecisionIds(), remediation: new RemediationScope(compileCidrs(config.state.remediation.exempt)) });
  const trace: CheckTrace[] = [];
  try {
    const decision = await engine.decide(req, nowMs, trace);
    const spec = REASONS[decision.reason];
    if (values.json) {
      process.stdout.write(
        JSON.stringify({ decision: decision.allow ? 'allow' : 'deny', reason: decision.reason, http_status: spec.http, grpc_code: spec.grpc, policy_hash: loaded.hash, at: new Date(nowMs).toISOString(), risk_score: decision.riskScore, resource: decision.resource, shadowed: decision.shadowed ?? [], trace }, null, 2) + '\n',
      );
    } else {
      process.stdout.write(`${decision.allow ? 'ALLOW' : 'DENY'} ${decision.reason} (HTTP ${spec.http}) — ${spec.description}\n`);
      process.stdout.write(`policy ${loaded.hash} from ${loaded.source}, at ${new Date(nowMs).toISOString()}\n\n`);
      for (const t of trace) {
        process.stdout.write(`  ${t.verdict.padEnd(11)} ${t.check.padEnd(20)} ${t.reason ?? ''}${t.detail ? `  (${t.detail})` : ''}\n`);
      }
      if (decision.shadowed?.length) process.stdout.write(`\nshadowed (would deny): ${decision.shadowed.join(', ')}\n`);
    }
    return decision.allow ? 0 : 3;
  } finally {
    authenticator.close();
    await state.close();
  }
}
