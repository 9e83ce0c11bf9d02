import type { ServerResponse } from 'node:http';
import type { PolicyConfig } from '../config/schema/policy.js';
import type { Decision } from '../model.js';
import { REASONS } from '../reasons.js';
import { REASON_HEADER, SHADOW_HEADER, bearerChallenge, denyBody } from './deny-body.js';

/**
 * Decisions as plain HTTP answers for auth-subrequest proxies: 200 with identity headers the
 * proxy copies upstream, or 401/403/5xx with the same reason header, challenge and JSON body as
 * the gRPC mode. nginx turns anything but 2xx/401/403 into a 500, which still never reaches upstream.
 */
export class HttpResponder {
  constructor(private readonly headers: PolicyConfig['headers']) {}

  write(res: ServerResponse, d: Decision): void {
    if (res.headersSent) return;
    res.setHeader(this.headers.decision_id, d.decisionId);
    res.setHeader('cache-control', 'no-store');
    if (d.allow) {
      res.setHeader(this.headers.risk_score, String(d.riskScore ?? 0));
      if (d.sub) {
        res.setHeader(this.headers.user_id, d.sub);
        if (d.claimHeaders) for (const [name, value] of d.claimHeaders) res.setHeader(name, value);
      }
      if (d.shadowed && d.shadowed.length > 0) res.setHeader(SHADOW_HEADER, d.shadowed.join(','));
      res.statusCode = 200;
      res.end();
      return;
    }
    const expose = this.headers.expose_reason !== false;
    const challenge = bearerChallenge(d, expose);
    if (challenge) res.setHeader('www-authenticate', challenge);
    if (expose) res.setHeader(REASON_HEADER, d.reason);
    res.setHeader('content-type', 'application/json');
    res.statusCode = REASONS[d.reason].http;
    res.end(denyBody(d.reason, d.decisionId, expose));
  }
}
