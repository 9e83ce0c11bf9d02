import { REASON_CODES, REASON_INDEX, type Reason } from '../reasons.js';
import type { Decision, NormalizedRequest } from '../model.js';

/**
 * What the live security page shows: decisions per second by reason, latency, the latest denies.
 * Only built when the page is on; the checker's one call per decision is a typed-array increment,
 * and a deny also writes one slot of a fixed ring. Nothing here ever holds a token or a header.
 */

/** Seconds of per-second history kept. */
export const WINDOW_S = 300;
/** Latency buckets: bucket i holds calls up to 2^(i/2) µs; the last one is open-ended (~0.7 s and up). */
const LATENCY_BUCKETS = 40;
const RING = 200;
/** Sampling bound of the deny ring, so a flood of one reason cannot push every other deny out. */
const DENIES_PER_SECOND = 20;
const MAX_PATH = 200;

const R = REASON_CODES.length;

export interface RecentDeny {
  readonly t: number;
  readonly reason: Reason;
  readonly decision_id: string;
  readonly method: string;
  readonly path: string;
  readonly resource: string;
  readonly user: string;
  readonly ip: string;
}

/** One worker's raw figures; `combineLive` adds several up and derives the percentiles. */
export interface LiveRaw {
  readonly now: number;
  /** Epoch second of each point, oldest first, and its counts indexed like REASON_CODES. */
  readonly seconds: readonly number[];
  readonly counts: readonly (readonly number[])[];
  /** Latency bucket counts over the last 60 s. */
  readonly latency: readonly number[];
  readonly would_deny: Readonly<Partial<Record<Reason, number>>>;
  readonly recent_denies: readonly RecentDeny[];
}

export interface LiveStatsOptions {
  readonly showUsers: boolean;
  readonly showIps: boolean;
}

export class LiveStats {
  private readonly second = new Float64Array(WINDOW_S).fill(-1);
  private readonly counts = new Uint32Array(WINDOW_S * R);
  private readonly latency = new Uint32Array(WINDOW_S * LATENCY_BUCKETS);
  private readonly wouldDeny = new Uint32Array(R);
  private readonly ring: (RecentDeny | undefined)[] = new Array<RecentDeny | undefined>(RING).fill(undefined);
  private ringNext = 0;
  private ringSecond = -1;
  private ringThisSecond = 0;

  constructor(private readonly opts: LiveStatsOptions) {}

  record(d: Decision, req: NormalizedRequest | undefined, seconds: number, nowMs: number): void {
    const sec = Math.floor(nowMs / 1000);
    const slot = sec % WINDOW_S;
    if (this.second[slot] !== sec) {
      this.second[slot] = sec;
      this.counts.fill(0, slot * R, slot * R + R);
      this.latency.fill(0, slot * LATENCY_BUCKETS, (slot + 1) * LATENCY_BUCKETS);
    }
    this.counts[slot * R + REASON_INDEX[d.reason]]!++;
    const us = seconds * 1e6;
    const b = us <= 1 ? 0 : Math.min(LATENCY_BUCKETS - 1, Math.ceil(2 * Math.log2(us)));
    this.latency[slot * LATENCY_BUCKETS + b]!++;
    if (d.shadowed) for (const r of d.shadowed) this.wouldDeny[REASON_INDEX[r]]!++;
    if (!d.allow) this.remember(d, req, sec, nowMs);
  }

  private remember(d: Decision, req: NormalizedRequest | undefined, sec: number, nowMs: number): void {
    if (sec !== this.ringSecond) {
      this.ringSecond = sec;
      this.ringThisSecond = 0;
    }
    if (++this.ringThisSecond > DENIES_PER_SECOND) return;
    this.ring[this.ringNext] = {
      t: nowMs,
      reason: d.reason,
      decision_id: d.decisionId,
      method: req?.method ?? '',
      path: (req?.path ?? '').slice(0, MAX_PATH),
      resource: d.resource ?? '',
      user: this.opts.showUsers ? (d.sub ?? '') : d.sub ? '(hidden)' : '',
      ip: this.opts.showIps ? (req?.clientIp ?? '') : '(hidden)',
    };
    this.ringNext = (this.ringNext + 1) % RING;
  }

  raw(nowMs: number): LiveRaw {
    const nowSec = Math.floor(nowMs / 1000);
    const seconds: number[] = [];
    const counts: number[][] = [];
    const latency = new Array<number>(LATENCY_BUCKETS).fill(0);
    // The current second is still filling: the chart ends at the last whole one.
    for (let s = nowSec - WINDOW_S + 1; s < nowSec; s++) {
      const slot = s % WINDOW_S;
      seconds.push(s);
      if (this.second[slot] !== s) {
        counts.push(new Array<number>(R).fill(0));
        continue;
      }
      counts.push(Array.from(this.counts.subarray(slot * R, slot * R + R)));
      if (s > nowSec - 61) for (let i = 0; i < LATENCY_BUCKETS; i++) latency[i]! += this.latency[slot * LATENCY_BUCKETS + i]!;
    }
    const wouldDeny: Partial<Record<Reason, number>> = {};
    this.wouldDeny.forEach((n, i) => {
      if (n > 0) wouldDeny[REASON_CODES[i]!] = n;
    });
    const denies: RecentDeny[] = [];
    for (let i = 1; i <= RING; i++) {
      const e = this.ring[(this.ringNext - i + RING) % RING];
      if (e !== undefined) denies.push(e);
    }
    return { now: nowMs, seconds, counts, latency, would_deny: wouldDeny, recent_denies: denies };
  }
}

export interface LiveView {
  readonly now: number;
  /** Epoch seconds of the chart's points, oldest first. */
  readonly seconds: readonly number[];
  /** Decisions per second for each reason that occurred in the window, aligned with `seconds`. */
  readonly by_reason: Readonly<Partial<Record<Reason, readonly number[]>>>;
  /** Totals over the window, by reason, only reasons that occurred. */
  readonly totals: Readonly<Partial<Record<Reason, number>>>;
  readonly latency_us: { readonly p50: number; readonly p90: number; readonly p99: number; readonly count: number };
  readonly would_deny: Readonly<Partial<Record<Reason, number>>>;
  readonly recent_denies: readonly RecentDeny[];
}

const bucketUpperUs = (i: number) => Math.round(2 ** (i / 2));

/** Adds up the figures of every worker of a process group (or just one) into what the page draws. */
export function combineLive(parts: readonly LiveRaw[]): LiveView {
  const now = Math.max(0, ...parts.map((p) => p.now));
  const bySecond = new Map<number, number[]>();
  const latency = new Array<number>(LATENCY_BUCKETS).fill(0);
  const wouldDeny: Partial<Record<Reason, number>> = {};
  for (const p of parts) {
    p.seconds.forEach((s, i) => {
      const acc = bySecond.get(s) ?? new Array<number>(R).fill(0);
      const c = p.counts[i] ?? [];
      for (let r = 0; r < R; r++) acc[r]! += c[r] ?? 0;
      bySecond.set(s, acc);
    });
    p.latency.forEach((n, i) => (latency[i]! += n));
    for (const [r, n] of Object.entries(p.would_deny)) wouldDeny[r as Reason] = (wouldDeny[r as Reason] ?? 0) + n;
  }
  const seconds = [...bySecond.keys()].sort((a, b) => a - b);
  const totals: Partial<Record<Reason, number>> = {};
  const byReason: Partial<Record<Reason, number[]>> = {};
  seconds.forEach((s, i) => {
    bySecond.get(s)!.forEach((n, r) => {
      if (n === 0) return;
      const reason = REASON_CODES[r]!;
      totals[reason] = (totals[reason] ?? 0) + n;
      (byReason[reason] ??= new Array<number>(seconds.length).fill(0))[i] = n;
    });
  });
  const count = latency.reduce((a, b) => a + b, 0);
  const pct = (q: number) => {
    if (count === 0) return 0;
    let seen = 0;
    for (let i = 0; i < LATENCY_BUCKETS; i++) {
      seen += latency[i]!;
      if (seen >= q * count) return bucketUpperUs(i);
    }
    return bucketUpperUs(LATENCY_BUCKETS - 1);
  };
  const denies = parts.flatMap((p) => p.recent_denies).sort((a, b) => b.t - a.t).slice(0, RING);
  return {
    now,
    seconds,
    by_reason: byReason,
    totals,
    latency_us: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), count },
    would_deny: wouldDeny,
    recent_denies: denies,
  };
}
