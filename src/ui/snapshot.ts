import { combineLive, type LiveRaw, type LiveView } from '../observability/live-stats.js';
import type { StateListing } from '../state/mirror.js';
import type { SecurityAlert } from '../state/remediation.js';

/** How many entries of each state list, and of security_alerts, the page shows. */
export const LIST_LIMIT = 100;

/** What one process answers (a worker of `serve --workers N`, or the only process). */
export interface UiPart {
  readonly pid: number;
  readonly policy: { readonly hash: string; readonly checks: readonly { readonly name: string; readonly shadowed: boolean }[] };
  readonly health: Readonly<Record<string, unknown>> & { readonly ready: boolean };
  readonly live: LiveRaw;
  readonly state: StateListing;
  readonly alerts: readonly SecurityAlert[];
}

/** What the page (and any script) reads from /ui/api/snapshot. */
export interface UiSnapshot {
  readonly generated_at: number;
  readonly workers: number;
  readonly policy: UiPart['policy'];
  readonly health: UiPart['health'];
  readonly live: LiveView;
  readonly state: StateListing;
  readonly alerts: readonly SecurityAlert[];
}

function mergeLists(parts: readonly StateListing[]): StateListing {
  // With Redis every worker mirrors the same lists; with the memory store each holds its own.
  const merge = (pick: (s: StateListing) => StateListing['suspended']) => {
    const seen = new Map<string, StateListing['suspended'][number]>();
    for (const p of parts) for (const e of pick(p)) if (!seen.has(e.id)) seen.set(e.id, e);
    return [...seen.values()].slice(0, LIST_LIMIT);
  };
  const first = parts[0]!;
  return {
    counts: first.counts,
    suspended: merge((s) => s.suspended),
    blocked_ips: merge((s) => s.blocked_ips),
    blocked_cidrs: merge((s) => s.blocked_cidrs),
    risk: merge((s) => s.risk),
  };
}

export function combineParts(parts: readonly UiPart[], nowMs: number): UiSnapshot {
  const first = parts[0];
  if (first === undefined) throw new Error('no process answered');
  const alerts = new Map<string, SecurityAlert>();
  for (const p of parts) for (const a of p.alerts) alerts.set(JSON.stringify(a), a);
  const at = (a: SecurityAlert) => (typeof a.at === 'string' ? a.at : '');
  return {
    generated_at: nowMs,
    workers: parts.length,
    policy: first.policy,
    health: { ...first.health, ready: parts.every((p) => p.health.ready) },
    live: combineLive(parts.map((p) => p.live)),
    state: mergeLists(parts.map((p) => p.state)),
    alerts: [...alerts.values()].sort((a, b) => at(b).localeCompare(at(a))).slice(0, LIST_LIMIT),
  };
}
