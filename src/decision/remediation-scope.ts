import type { AuthResult, NormalizedRequest } from '../model.js';
import { inList, type CidrList } from '../normalize/cidr.js';
import type { Reason } from '../reasons.js';

/**
 * Failures that count towards auto-remediation: the ones an attempt to get in produces (a bad
 * signature, garbage, a disallowed or `none` alg, a foreign issuer or audience, an unbounded lifetime).
 */
const COUNTED: ReadonlySet<Reason> = new Set<Reason>([
  'token_malformed',
  'token_invalid',
  'token_lifetime_exceeded',
  'issuer_unknown',
  'audience_mismatch',
]);

/**
 * A kid the issuer just rotated out is a token_invalid an honest client produces (a cached token
 * across a key rotation), and it can never let anyone in: not counted, so a rotation never blocks a
 * client's own IP. (token_expired and token_not_yet_valid are honest too, and are not in COUNTED.)
 */
const honest = (result: AuthResult & { ok: false }): boolean => result.fault === 'unknown_kid';

/**
 * Decides whether a failed authentication is counted against req.clientIp. Only an address that
 * names one client is: one forwarded by a trusted proxy (clientIpSource 'forwarded'), or the direct
 * peer when nothing says it relays for others. Never counted: a configured proxy that forwarded no
 * client address ('proxy'), a peer with a workload principal (a mesh peer such as an Istio ingress
 * gateway relays for every external client), and any address in state.remediation.exempt.
 */
export class RemediationScope {
  constructor(private readonly exempt: CidrList) {}

  counts(req: NormalizedRequest, result: AuthResult & { ok: false }): boolean {
    if (req.clientIp === '' || !COUNTED.has(result.reason) || honest(result)) return false;
    if (req.clientIpSource === 'proxy') return false;
    if (req.clientIpSource === 'peer' && req.principal !== '') return false;
    return !inList(this.exempt, req.clientIp);
  }
}
