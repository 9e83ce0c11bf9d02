import type { NormalizedRequest } from '../model.js';
import type { WireCheckRequest } from '../wire/check-request.js';
import { normalizeAuthSubrequest, type AuthSubrequest } from './auth-subrequest.js';
import type { CidrList } from './cidr.js';
import { normalizeCheckRequest } from './request.js';

export interface NormalizerOptions {
  /** network.trusted_xff_hops: how many x-forwarded-for entries Envoy's side of the mesh appended. */
  readonly trustedXffHops: number;
  /** server.http.trusted_proxies: peers whose description of the original request is believed. */
  readonly trustedProxies: CidrList;
}

/** Both transports' requests → NormalizedRequest, with the trust settings of one config. */
export class RequestNormalizer {
  constructor(private readonly opts: NormalizerOptions) {}

  checkRequest(msg: WireCheckRequest): NormalizedRequest {
    return normalizeCheckRequest(msg, this.opts);
  }

  authSubrequest(sub: AuthSubrequest): NormalizedRequest {
    return normalizeAuthSubrequest(sub, this.opts.trustedProxies);
  }
}
