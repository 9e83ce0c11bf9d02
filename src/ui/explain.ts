import type { DecisionEngine } from '../decision/engine.js';
import type { CheckTrace, NormalizedRequest } from '../model.js';
import { normalizeIp } from '../normalize/client-ip.js';
import { normalizePath } from '../normalize/path.js';
import { REASONS, type Reason } from '../reasons.js';

export interface ExplainInput {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly ip: string;
  readonly token: string;
}

export interface ExplainOutcome {
  readonly decision: 'allow' | 'deny';
  readonly reason: Reason;
  readonly http_status: number;
  readonly grpc_code: number;
  readonly policy_hash: string;
  readonly trace: readonly CheckTrace[];
}

export interface ExplainTarget {
  /** An engine over the serving policy and keys whose state view records no strikes. */
  readonly engine: DecisionEngine;
  readonly hash: string;
  readonly tokenHeader: string;
  readonly tokenScheme: string;
}

/** The same per-check trace as `zt-authz explain`, for the request the form describes. */
export async function explainRequest(input: ExplainInput, target: ExplainTarget, nowMs = Date.now()): Promise<ExplainOutcome> {
  const trace: CheckTrace[] = [];
  let req: NormalizedRequest;
  try {
    const split = normalizePath(input.path || '/');
    const headers: Record<string, string> = {};
    if (input.token !== '') headers[target.tokenHeader] = target.tokenScheme ? `${target.tokenScheme} ${input.token}` : input.token;
    req = {
      method: (input.method || 'GET').toUpperCase(),
      path: split.path,
      rawPath: input.path,
      query: split.query,
      host: (input.host || 'localhost').toLowerCase(),
      scheme: 'https',
      headers,
      clientIp: normalizeIp(input.ip),
      clientIpSource: 'peer',
      principal: '',
      contextExtensions: {},
      requestId: 'ui-explain',
    };
  } catch (err) {
    trace.push({ check: 'request', verdict: 'deny', reason: 'request_invalid', detail: (err as Error).message });
    return outcome('request_invalid', target.hash, trace);
  }
  const d = await target.engine.decide(req, nowMs, trace);
  return outcome(d.reason, target.hash, trace);
}

function outcome(reason: Reason, hash: string, trace: CheckTrace[]): ExplainOutcome {
  const spec = REASONS[reason];
  return { decision: reason === 'allowed' ? 'allow' : 'deny', reason, http_status: spec.http, grpc_code: spec.grpc, policy_hash: hash, trace };
}
