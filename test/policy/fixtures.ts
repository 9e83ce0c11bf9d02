import type { z } from 'zod';
import { policySchema } from '../../src/config/schema/policy.js';
import type { CheckTrace, Identity, NormalizedRequest } from '../../src/model.js';
import { compilePolicy } from '../../src/policy/index.js';
import type { CompiledPolicy, PolicyOutcome } from '../../src/policy/types.js';
import type { ListVerdict, StateView } from '../../src/state/types.js';

export type PolicyInputConfig = z.input<typeof policySchema>;

export function compile(cfg: PolicyInputConfig = {}): CompiledPolicy {
  return compilePolicy(policySchema.parse(cfg));
}

export function request(over: Partial<NormalizedRequest> = {}): NormalizedRequest {
  const path = over.path ?? '/';
  return {
    method: 'GET',
    path,
    rawPath: path,
    query: '',
    host: 'app.example.com',
    scheme: 'https',
    headers: {},
    clientIp: '10.0.0.1',
    clientIpSource: 'peer',
    principal: '',
    contextExtensions: {},
    requestId: 'req-1',
    ...over,
  };
}

export function user(claims: Record<string, unknown> = {}, sub = 'alice'): Identity {
  return { issuer: 'https://issuer.test', sub, claims: { sub, ...claims }, exp: 4_102_444_800 };
}

export interface StubState extends StateView {
  readonly calls: string[];
}

/** In-memory StateView: suspension and live risk per subject, or a whole backend that is down. */
export function stubState(
  opts: { suspended?: Record<string, ListVerdict>; liveRisk?: Record<string, number | 'unavailable'>; throws?: boolean } = {},
): StubState {
  const calls: string[] = [];
  return {
    calls,
    userSuspended(sub) {
      calls.push(`userSuspended:${sub}`);
      if (opts.throws) throw new Error('backend exploded');
      return opts.suspended?.[sub] ?? 'clear';
    },
    ipBlocked() {
      return 'clear';
    },
    liveRisk(sub) {
      calls.push(`liveRisk:${sub}`);
      if (opts.throws) throw new Error('backend exploded');
      return opts.liveRisk?.[sub];
    },
    recordAuthFailure() {},
  };
}

export const CLEAR = stubState();

/** 2026-03-04 (a Wednesday) 12:00 UTC: inside every default window. */
export const WEDNESDAY_NOON = Date.parse('2026-03-04T12:00:00Z');

export function evaluate(
  policy: CompiledPolicy,
  opts: { req?: Partial<NormalizedRequest>; identity?: Identity | null; nowMs?: number; state?: StateView; trace?: CheckTrace[] } = {},
): PolicyOutcome {
  return policy.evaluate(
    { req: request(opts.req), identity: opts.identity === undefined ? user() : opts.identity, nowMs: opts.nowMs ?? WEDNESDAY_NOON },
    opts.state ?? CLEAR,
    opts.trace,
  );
}
