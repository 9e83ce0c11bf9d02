import { identitySchema, type IdentityConfig } from '../../src/config/schema/identity.js';
import { createAuthenticator } from '../../src/identity/index.js';
import type { Authenticator } from '../../src/identity/types.js';
import { silentLogger, type Logger } from '../../src/observability/logger.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import type { AuthResult, NormalizedRequest } from '../../src/model.js';

export interface Harness {
  readonly authn: Authenticator;
  readonly metrics: Metrics;
  readonly warnings: string[];
}

/** A logger that records warn/error messages and their fields, so tests can assert on them. */
export function recordingLogger(lines: string[]): Logger {
  const child = silentLogger.child({});
  const record = (level: string) => (obj: unknown, msg?: string) => {
    lines.push(`${level} ${typeof obj === 'string' ? obj : `${msg ?? ''} ${JSON.stringify(obj)}`}`);
  };
  return Object.assign(child, { warn: record('warn'), error: record('error'), info: record('info') });
}

export function harness(input: unknown): Harness {
  const cfg: IdentityConfig = identitySchema.parse(input);
  const metrics = createMetrics();
  const warnings: string[] = [];
  const authn = createAuthenticator(cfg, { logger: recordingLogger(warnings), metrics });
  return { authn, metrics, warnings };
}

export async function auth(authn: Authenticator, token: string, nowMs = Date.now()): Promise<AuthResult> {
  return authn.authenticate(token, nowMs);
}

export async function counter(metrics: Metrics, name: 'tokenCache' | 'jwksRefreshes', labels: Record<string, string>): Promise<number> {
  const data = await metrics[name].get();
  return data.values
    .filter((v) => Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val))
    .reduce((a, v) => a + v.value, 0);
}

export function request(headers: Record<string, string>): NormalizedRequest {
  return {
    method: 'GET',
    path: '/',
    rawPath: '/',
    query: '',
    host: 'example.test',
    scheme: 'https',
    headers,
    clientIp: '',
    clientIpSource: 'peer',
    principal: '',
    contextExtensions: {},
    requestId: 'r1',
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` returns true; fails after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
