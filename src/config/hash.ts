import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level, so equal configs hash equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Config versions (whole file and policy section) in logs and metrics. First 12 hex digits of sha256(canonical JSON): short enough for a label, long enough to tell versions apart. */
export function contentHash(config: unknown): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex').slice(0, 12);
}

/**
 * The policy hash shown by `serve` (logs, metrics, /readyz), `explain` and `check-config`: it covers
 * what decides a request (policy, identity, network trust and the state rules), not where the
 * server listens, its limits, logging or how it reaches Redis, so the same policy hashes the same
 * in every command and on every port.
 */
export function decisionHash(config: {
  policy: unknown;
  identity: unknown;
  network: unknown;
  state: { backend: unknown; on_unavailable: unknown; max_staleness_s: unknown; remediation: unknown };
}): string {
  const { backend, on_unavailable, max_staleness_s, remediation } = config.state;
  return contentHash({ policy: config.policy, identity: config.identity, network: config.network, state: { backend, on_unavailable, max_staleness_s, remediation } });
}
