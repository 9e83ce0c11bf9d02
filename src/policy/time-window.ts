import type { TimeWindowConfig } from '../config/schema/policy.js';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/**
 * Wall-clock time in one IANA zone. The UTC offset is looked up with Intl once per UTC minute and
 * cached: every tzdb transition of the last century falls on a whole UTC minute, so an offset read
 * at the start of a minute holds for all of it, and a DST change is seen the minute it happens.
 */
export class ZoneClock {
  private readonly fmt: Intl.DateTimeFormat;
  private cachedMinute = Number.NaN;
  private cachedOffsetMs = 0;

  constructor(readonly timeZone: string) {
    this.fmt = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  }

  /** Milliseconds since 1970-01-01T00:00 local time (the local wall clock read as if it were UTC). */
  localMs(nowMs: number): number {
    const minute = Math.floor(nowMs / MINUTE_MS);
    if (minute !== this.cachedMinute) {
      this.cachedOffsetMs = this.offsetAt(minute * MINUTE_MS);
      this.cachedMinute = minute;
    }
    return nowMs + this.cachedOffsetMs;
  }

  /** Uncached: local wall clock minus UTC at `ms` (a whole second). */
  offsetAt(ms: number): number {
    let y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    for (const p of this.fmt.formatToParts(ms)) {
      switch (p.type) {
        case 'year': y = Number(p.value); break;
        case 'month': mo = Number(p.value); break;
        case 'day': d = Number(p.value); break;
        case 'hour': h = Number(p.value); break;
        case 'minute': mi = Number(p.value); break;
        case 'second': s = Number(p.value); break;
        default: break;
      }
    }
    return Date.UTC(y, mo - 1, d, h, mi, s) - ms;
  }
}

export interface LocalTime {
  /** 0 = Sunday. */
  readonly weekday: number;
  readonly minuteOfDay: number;
}

export function localTime(clock: ZoneClock, nowMs: number): LocalTime {
  const local = clock.localMs(nowMs);
  const day = Math.floor(local / DAY_MS);
  return { weekday: (((day + 4) % 7) + 7) % 7, minuteOfDay: Math.floor((local - day * DAY_MS) / MINUTE_MS) };
}

const toMinutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

export interface CompiledWindow {
  allows(nowMs: number): boolean;
  /** For deny details and explain; only called off the allow path. */
  describe(nowMs: number): string;
}

/**
 * Start and end are inclusive minutes. end < start wraps past midnight, and the hours after
 * midnight belong to the day the window opened: `22:00–05:59` on `fri` allows Saturday 03:00 but
 * not Friday 03:00. Wall-clock semantics: a window inside the hour skipped by a spring-forward
 * change is never open that night; one inside the repeated autumn hour is open both times.
 */
export function compileWindow(cfg: TimeWindowConfig, clocks: Map<string, ZoneClock>): CompiledWindow {
  let clock = clocks.get(cfg.timezone);
  if (clock === undefined) {
    clock = new ZoneClock(cfg.timezone);
    clocks.set(cfg.timezone, clock);
  }
  const zone = clock;
  const start = toMinutes(cfg.start);
  const end = toMinutes(cfg.end);
  let mask = 0;
  for (const d of cfg.days) mask |= 1 << WEEKDAYS.indexOf(d);
  const wraps = end < start;
  const onDay = (weekday: number) => (mask & (1 << weekday)) !== 0;

  const allows = (nowMs: number): boolean => {
    const local = zone.localMs(nowMs);
    const day = Math.floor(local / DAY_MS);
    const m = Math.floor((local - day * DAY_MS) / MINUTE_MS);
    const weekday = (((day + 4) % 7) + 7) % 7;
    if (!wraps) return m >= start && m <= end && onDay(weekday);
    if (m >= start) return onDay(weekday);
    if (m <= end) return onDay((weekday + 6) % 7);
    return false;
  };

  return {
    allows,
    describe(nowMs) {
      const t = localTime(zone, nowMs);
      const now = `${WEEKDAYS[t.weekday]} ${pad2(Math.floor(t.minuteOfDay / 60))}:${pad2(t.minuteOfDay % 60)}`;
      return `local time ${now} ${cfg.timezone}; window ${cfg.start}-${cfg.end} on ${cfg.days.join(',')}`;
    },
  };
}
