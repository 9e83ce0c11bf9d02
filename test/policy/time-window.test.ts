import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { timeWindowSchema } from '../../src/config/schema/policy.js';
import { compileWindow, localTime, ZoneClock } from '../../src/policy/time-window.js';
import { compile, evaluate, user } from './fixtures.js';

type WindowInput = Parameters<typeof timeWindowSchema.parse>[0];
const windowOf = (w: WindowInput) => compileWindow(timeWindowSchema.parse(w), new Map());
const at = (iso: string) => Date.parse(iso);

describe('time window boundaries in the zone', () => {
  it.each([
    // default window 08:00–18:59, every day
    ['UTC', '2026-03-04T07:59:59Z', false],
    ['UTC', '2026-03-04T08:00:00Z', true],
    ['UTC', '2026-03-04T18:59:00Z', true],
    ['UTC', '2026-03-04T18:59:59.999Z', true],
    ['UTC', '2026-03-04T19:00:00Z', false],
    // America/New_York, the day before the spring change (EST, UTC-5)
    ['America/New_York', '2026-03-07T12:59:59Z', false],
    ['America/New_York', '2026-03-07T13:00:00Z', true],
    ['America/New_York', '2026-03-07T23:59:59Z', true],
    ['America/New_York', '2026-03-08T00:00:00Z', false],
    // spring change 2026-03-08 07:00Z (02:00 EST -> 03:00 EDT): now UTC-4
    ['America/New_York', '2026-03-08T11:59:59Z', false],
    ['America/New_York', '2026-03-08T12:00:00Z', true],
    ['America/New_York', '2026-03-08T22:59:00Z', true],
    ['America/New_York', '2026-03-08T23:00:00Z', false],
    // autumn change 2026-11-01 06:00Z (02:00 EDT -> 01:00 EST): UTC-4 before, UTC-5 after
    ['America/New_York', '2026-10-31T12:00:00Z', true],
    ['America/New_York', '2026-10-31T22:59:00Z', true],
    ['America/New_York', '2026-10-31T23:00:00Z', false],
    ['America/New_York', '2026-11-01T12:59:59Z', false],
    ['America/New_York', '2026-11-01T13:00:00Z', true],
    ['America/New_York', '2026-11-01T23:59:00Z', true],
    ['America/New_York', '2026-11-02T00:00:00Z', false],
    // Europe/Berlin: CET (UTC+1) until 2026-03-29 01:00Z, CEST (UTC+2) until 2026-10-25 01:00Z
    ['Europe/Berlin', '2026-03-28T06:59:59Z', false],
    ['Europe/Berlin', '2026-03-28T07:00:00Z', true],
    ['Europe/Berlin', '2026-03-28T17:59:00Z', true],
    ['Europe/Berlin', '2026-03-28T18:00:00Z', false],
    ['Europe/Berlin', '2026-03-29T05:59:59Z', false],
    ['Europe/Berlin', '2026-03-29T06:00:00Z', true],
    ['Europe/Berlin', '2026-03-29T16:59:00Z', true],
    ['Europe/Berlin', '2026-03-29T17:00:00Z', false],
    ['Europe/Berlin', '2026-10-25T06:59:59Z', false],
    ['Europe/Berlin', '2026-10-25T07:00:00Z', true],
    ['Europe/Berlin', '2026-10-25T17:59:00Z', true],
    ['Europe/Berlin', '2026-10-25T18:00:00Z', false],
    // a half-hour zone
    ['Asia/Kolkata', '2026-03-04T02:29:59Z', false],
    ['Asia/Kolkata', '2026-03-04T02:30:00Z', true],
    ['Asia/Kolkata', '2026-03-04T13:29:00Z', true],
    ['Asia/Kolkata', '2026-03-04T13:30:00Z', false],
  ])('%s %s -> %s', (timezone, iso, expected) => {
    expect(windowOf({ timezone }).allows(at(iso))).toBe(expected);
  });

  it('sees the DST change the minute it happens, with the same clock evaluated in sequence', () => {
    const w = windowOf({ timezone: 'America/New_York', start: '03:00', end: '03:59' });
    expect(w.allows(at('2026-03-08T06:59:59Z'))).toBe(false); // 01:59:59 EST
    expect(w.allows(at('2026-03-08T07:00:00Z'))).toBe(true); // 03:00 EDT
    expect(w.allows(at('2026-03-08T06:59:30Z'))).toBe(false); // back in time: cache must not stick
  });

  it('a window inside the skipped spring hour is never open that night; the repeated autumn hour is open twice', () => {
    const skipped = windowOf({ timezone: 'America/New_York', start: '02:00', end: '02:59' });
    for (let t = at('2026-03-08T05:00:00Z'); t < at('2026-03-08T09:00:00Z'); t += 60_000) {
      expect(skipped.allows(t)).toBe(false);
    }
    const repeated = windowOf({ timezone: 'America/New_York', start: '01:00', end: '01:59' });
    expect(repeated.allows(at('2026-11-01T05:30:00Z'))).toBe(true); // 01:30 EDT
    expect(repeated.allows(at('2026-11-01T06:30:00Z'))).toBe(true); // 01:30 EST
    expect(repeated.allows(at('2026-11-01T07:00:00Z'))).toBe(false); // 02:00 EST
  });
});

describe('weekdays', () => {
  const weekdays = { days: ['mon', 'tue', 'wed', 'thu', 'fri'] as ('mon' | 'tue' | 'wed' | 'thu' | 'fri')[] };
  it.each([
    ['UTC', '2026-03-06T12:00:00Z', true], // Friday
    ['UTC', '2026-03-07T12:00:00Z', false], // Saturday
    ['UTC', '2026-03-08T12:00:00Z', false], // Sunday
    ['UTC', '2026-03-09T12:00:00Z', true], // Monday
    // Monday 03:00 UTC is still Sunday 23:00 in New York, Monday 12:00 in Tokyo
    ['America/New_York', '2026-03-09T03:00:00Z', false],
    ['Asia/Tokyo', '2026-03-08T23:00:00Z', true], // Monday 08:00 JST
    ['Asia/Tokyo', '2026-03-06T22:59:59Z', false], // Friday in UTC, Saturday 07:59:59 in Tokyo
  ])('%s %s -> %s', (timezone, iso, expected) => {
    const w = windowOf({ timezone, start: '00:00', end: '23:59', ...weekdays });
    expect(w.allows(at(iso))).toBe(expected);
  });

  it('every weekday maps to the right bit', () => {
    const days = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
    // 2026-03-01 is a Sunday
    days.forEach((day, i) => {
      const w = windowOf({ timezone: 'UTC', start: '00:00', end: '23:59', days: [day] });
      for (let d = 0; d < 7; d++) {
        expect(w.allows(at(`2026-03-0${d + 1}T12:00:00Z`))).toBe(d === i);
      }
    });
  });
});

describe('overnight windows', () => {
  const night = windowOf({ timezone: 'Europe/Berlin', start: '22:00', end: '05:59', days: ['fri'] });
  it.each([
    ['2026-03-06T20:59:59Z', false], // Fri 21:59:59 CET
    ['2026-03-06T21:00:00Z', true], // Fri 22:00
    ['2026-03-06T22:59:00Z', true], // Fri 23:59
    ['2026-03-06T23:00:00Z', true], // Sat 00:00, still Friday's shift
    ['2026-03-07T04:59:59Z', true], // Sat 05:59:59
    ['2026-03-07T05:00:00Z', false], // Sat 06:00
    ['2026-03-07T21:00:00Z', false], // Sat 22:00: Saturday is not listed
    ['2026-03-06T03:00:00Z', false], // Fri 04:00 belongs to Thursday's shift
    ['2026-03-06T12:00:00Z', false], // Fri noon
  ])('fri 22:00–05:59 Berlin at %s -> %s', (iso, expected) => {
    expect(night.allows(at(iso))).toBe(expected);
  });

  it('start == end is a single minute', () => {
    const w = windowOf({ timezone: 'UTC', start: '12:00', end: '12:00' });
    expect(w.allows(at('2026-03-04T11:59:59Z'))).toBe(false);
    expect(w.allows(at('2026-03-04T12:00:59Z'))).toBe(true);
    expect(w.allows(at('2026-03-04T12:01:00Z'))).toBe(false);
  });

  it('00:00–23:59 is always open', () => {
    const w = windowOf({ timezone: 'Pacific/Chatham', start: '00:00', end: '23:59' });
    for (let t = at('2026-04-04T00:00:00Z'); t < at('2026-04-06T00:00:00Z'); t += 7 * 60_000) expect(w.allows(t)).toBe(true);
  });
});

describe('ZoneClock cache', () => {
  const zones = ['UTC', 'America/New_York', 'Europe/Berlin', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'America/St_Johns', 'Pacific/Chatham'];
  const oracle = new Map(
    zones.map((z) => [z, new Intl.DateTimeFormat('en-GB', { timeZone: z, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })]),
  );
  const WD = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

  it('agrees with an independent Intl reading for any sequence of instants (property)', () => {
    const clocks = new Map(zones.map((z) => [z, new ZoneClock(z)]));
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        // any minute of 2020–2035, plus a sub-minute part, in random order so the one-slot cache is exercised
        fc.integer({ min: 26_298_720, max: 34_186_000 }),
        fc.integer({ min: 0, max: 59_999 }),
        (zone, minute, ms) => {
          const nowMs = minute * 60_000 + ms;
          const t = localTime(clocks.get(zone)!, nowMs);
          const parts = oracle.get(zone)!.formatToParts(nowMs);
          const get = (type: string) => parts.find((p) => p.type === type)!.value;
          expect(WD[t.weekday]).toBe(get('weekday'));
          expect(t.minuteOfDay).toBe(Number(get('hour')) * 60 + Number(get('minute')));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('agrees minute by minute across every 2026 transition of Lord Howe (30-minute DST) and New York', () => {
    for (const [zone, from] of [
      ['Australia/Lord_Howe', '2026-04-04T14:00:00Z'],
      ['Australia/Lord_Howe', '2026-10-03T15:00:00Z'],
      ['America/New_York', '2026-03-08T06:00:00Z'],
      ['America/New_York', '2026-11-01T05:00:00Z'],
    ] as const) {
      const clock = new ZoneClock(zone);
      for (let t = at(from); t < at(from) + 3 * 3_600_000; t += 30_000) {
        const parts = oracle.get(zone)!.formatToParts(t);
        const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
        expect(localTime(clock, t).minuteOfDay).toBe(get('hour') * 60 + get('minute'));
      }
    }
  });
});

describe('time window in evaluate', () => {
  const ALL = user({ allowed_resources: ['*'], clearance_level: 'restricted' });
  const policy = compile({
    time_window: { timezone: 'UTC', start: '08:00', end: '18:59' },
    resources: {
      orders: {},
      night: { time_window: { timezone: 'America/New_York', start: '22:00', end: '05:59' } },
      batch: { identity: 'workload' },
    },
    routes: [
      { prefix: '/orders', resource: 'orders' },
      { prefix: '/night', resource: 'night' },
      { prefix: '/batch', resource: 'batch' },
    ],
    service_pairs: [{ from: 'batch-runner', to: 'batch' }],
  });

  it.each([
    ['/orders', '2026-03-04T18:59:59Z', 'allowed'],
    ['/orders', '2026-03-04T19:00:00Z', 'outside_time_window'],
    ['/night', '2026-03-04T19:00:00Z', 'outside_time_window'], // 14:00 EST
    ['/night', '2026-03-05T03:00:00Z', 'allowed'], // 22:00 EST: the resource window replaces the global one
  ])('%s at %s -> %s', (path, iso, reason) => {
    expect(evaluate(policy, { req: { path }, identity: ALL, nowMs: at(iso) }).reason).toBe(reason);
  });

  it('applies to workload-only requests too', () => {
    const req = { path: '/batch', principal: 'spiffe://cluster.local/ns/jobs/sa/batch-runner' };
    expect(evaluate(policy, { req, identity: null, nowMs: at('2026-03-04T12:00:00Z') }).reason).toBe('allowed');
    const out = evaluate(policy, { req, identity: null, nowMs: at('2026-03-04T19:00:00Z') });
    expect(out.reason).toBe('outside_time_window');
    expect(out.detail).toBe('local time wed 19:00 UTC; window 08:00-18:59 on mon,tue,wed,thu,fri,sat,sun');
  });
});
