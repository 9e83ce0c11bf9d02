import { loadConfig } from '../config/load.js';
import { DecisionEngine } from '../decision/engine.js';
import { createDecisionIds } from '../decision/ids.js';
import { RemediationScope } from '../decision/remediation-scope.js';
import type { CheckTrace, NormalizedRequest } from '../model.js';
import { createAuthenticator } from '../identity/index.js';
import { compileCidrs } from '../normalize/cidr.js';
import { normalizeIp } from '../normalize/client-ip.js';
import { normalizeRequest } from '../normalize/request.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { compilePolicy } from '../policy/index.js';
import { REASONS } from '../reasons.js';
import { createStateStore } from '../state/index.js';
import { parse, usageFailed } from './args.js';

const USAGE = `Usage: zt-authz explain [--config FILE] [--token JWT] [--method M] [--path P] [--host H]
                        [--ip IP] [--principal SPIFFE_ID] [--header k=v]... [--resource NAME]
                        [--at ISO-8601] [--json]

Evaluates one request exactly as the server would, without running a server, and prints the
decision and the verdict of every check in order. Loads the keys and state the config names; when
one of them cannot be loaded, it prints why (the file, the fetch or the issuer mismatch), as serve
would log it.

--at sets the time the policy is judged at (time windows, days). The token's exp, nbf and iat are
always checked against the real clock, so a freshly minted token can be explained at any --at.
`;

/** Collects what the key and state loaders log (warn and above): the causes explain reports. */
function problemCollector(): { logger: ReturnType<typeof createLogger>; problems: string[] } {
  const problems: string[] = [];
  const logger = createLogger('warn', {
    write(line: string) {
      try {
        const { msg, level: _l, time: _t, pid: _p, hostname: _h, svc: _s, ...rest } = JSON.parse(line) as Record<string, unknown>;
        const detail = Object.entries(rest)
          .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join('; ');
        problems.push(detail ? `${String(msg)} (${detail})` : String(msg));
      } catch {
        problems.push(line.trim());
      }
    },
  });
  return { logger, problems };
}

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

  let req: NormalizedRequest;
  try {
    req = normalizeRequest({
      method: values.method,
      path: '',
      rawPath: values.path,
      query: '',
      host: values.host,
      scheme: 'https',
      headers,
      clientIp: normalizeIp(values.ip),
      clientIpSource: 'peer',
      principal: values.principal,
      contextExtensions: values.resource ? { resource: values.resource } : {},
      requestId: 'explain',
    });
  } catch (err) {
    process.stderr.write(`--${(err as Error).message}\n`);
    return 2;
  }

  const { logger, problems } = problemCollector();
  const deps = { logger, metrics: createMetrics() };
  const authenticator = createAuthenticator(config.identity, deps);
  const state = createStateStore(config.state, deps);
  await Promise.all([
    authenticator.start(),
    state.start().catch((err: unknown) => void problems.push(`state backend failed to start (${(err as Error).message})`)),
  ]);
  const policy = compilePolicy(config.policy);
  // Token time claims against the real clock, the policy against --at (see USAGE).
  const realClock: typeof authenticator = {
    extractToken: (r) => authenticator.extractToken(r),
    authenticate: (token) => authenticator.authenticate(token, Date.now()),
    ready: () => authenticator.ready(),
    anyReady: () => authenticator.anyReady(),
    keyStatus: () => authenticator.keyStatus(),
    start: () => authenticator.start(),
    close: () => authenticator.close(),
  };
  const engine = new DecisionEngine({ authenticator: realClock, state, policy, nextId: createDecisionIds(), remediation: new RemediationScope(compileCidrs(config.state.remediation.exempt)) });
  const trace: CheckTrace[] = [];
  try {
    const decision = await engine.decide(req, nowMs, trace);
    const spec = REASONS[decision.reason];
    if (values.json) {
      process.stdout.write(
        JSON.stringify({ decision: decision.allow ? 'allow' : 'deny', reason: decision.reason, http_status: spec.http, grpc_code: spec.grpc, policy_hash: loaded.hash, at: new Date(nowMs).toISOString(), risk_score: decision.riskScore, resource: decision.resource, shadowed: decision.shadowed ?? [], trace, problems }, null, 2) + '\n',
      );
    } else {
      process.stdout.write(`${decision.allow ? 'ALLOW' : 'DENY'} ${decision.reason} (HTTP ${spec.http}) — ${spec.description}\n`);
      const clock = values.at ? ` (token times: real clock, ${new Date().toISOString()})` : '';
      process.stdout.write(`policy ${loaded.hash} from ${loaded.source}, at ${new Date(nowMs).toISOString()}${clock}\n\n`);
      for (const t of trace) {
        process.stdout.write(`  ${t.verdict.padEnd(11)} ${t.check.padEnd(20)} ${t.reason ?? ''}${t.detail ? `  (${t.detail})` : ''}\n`);
      }
      if (decision.shadowed?.length) process.stdout.write(`\nshadowed (would deny): ${decision.shadowed.join(', ')}\n`);
      if (problems.length) process.stdout.write(`\nwhy some checks could not run:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    }
    return decision.allow ? 0 : 3;
  } finally {
    authenticator.close();
    await state.close();
  }
}
