import type { ConfigInput } from '../../src/config/schema/index.js';
import { DEMO_CONFIG } from '../../src/config/defaults.js';

export interface BenchConfigOptions {
  readonly redisUrl?: string;
  readonly decisionLog: 'all' | 'deny' | 'none';
  /** Auto-remediation would block the mix's source IPs after a few forged tokens. */
  readonly remediation?: boolean;
}

/**
 * The demo config (development keys, full demo policy) with quiet logs. Decision logging is a
 * harness option because one JSON line per check is a cost of its own, not of the policy.
 */
export function benchConfig(o: BenchConfigOptions): ConfigInput {
  const c = structuredClone(DEMO_CONFIG) as Record<string, unknown>;
  c.log = { level: 'warn', decisions: o.decisionLog };
  c.server = { grpc: { address: '127.0.0.1:0' }, http: { address: '127.0.0.1:0' } };
  c.state = o.redisUrl
    ? { backend: 'redis', redis: { url: o.redisUrl }, remediation: { enabled: o.remediation ?? false } }
    : { backend: 'memory', remediation: { enabled: o.remediation ?? false } };
  return c as ConfigInput;
}
