import type { WireCheckRequest } from '../../src/wire/check-request.js';
import { checkRequest, type RequestSpec } from '../../test/helpers/grpc.js';

/**
 * A CheckRequest as Envoy sends it. The request time is fixed so that a pre-encoded body stays
 * byte-identical; the policy clock is the server's own, not this field.
 */
export function benchRequest(spec: RequestSpec = {}): WireCheckRequest {
  const req = checkRequest({ path: '/api/orders', ...spec });
  return req;
}
