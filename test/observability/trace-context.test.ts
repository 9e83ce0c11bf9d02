import { describe, expect, it } from 'vitest';
import { traceContextOf } from '../../src/observability/trace-context.js';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';

describe('trace context from request headers', () => {
  it('reads W3C traceparent with its sampled flag, and later versions by their first fields', () => {
    expect(traceContextOf({ traceparent: `00-${T}-${S}-01` })).toEqual({ traceId: T, spanId: S, sampled: true });
    expect(traceContextOf({ traceparent: `00-${T}-${S}-00` })).toEqual({ traceId: T, spanId: S, sampled: false });
    expect(traceContextOf({ traceparent: `01-${T}-${S}-01-future` })).toEqual({ traceId: T, spanId: S, sampled: true });
  });

  it('rejects what the spec calls invalid: version ff, all-zero ids, wrong lengths, non-hex', () => {
    for (const tp of [`ff-${T}-${S}-01`, `00-${'0'.repeat(32)}-${S}-01`, `00-${T}-${'0'.repeat(16)}-01`, `00-${T.slice(1)}-${S}-01`, `00-${T}-${S}-zz`, `00-${T.toUpperCase()}x-${S}-01`]) {
      expect(traceContextOf({ traceparent: tp }), tp).toBeUndefined();
    }
  });

  it('falls back to B3 multi-header, then B3 single; 64-bit B3 trace ids are left-padded to 128', () => {
    expect(traceContextOf({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '1' })).toEqual({ traceId: T, spanId: S, sampled: true });
    expect(traceContextOf({ 'x-b3-traceid': 'a3ce929d0e0e4736', 'x-b3-spanid': S })).toEqual({ traceId: '0000000000000000a3ce929d0e0e4736', spanId: S, sampled: false });
    expect(traceContextOf({ b3: `${T}-${S}-d-${S}` })).toEqual({ traceId: T, spanId: S, sampled: true });
    expect(traceContextOf({ b3: '0' })).toBeUndefined();
    // A valid traceparent wins over B3.
    expect(traceContextOf({ traceparent: `00-${T}-${S}-01`, b3: `${'1'.repeat(32)}-${'2'.repeat(16)}` })?.traceId).toBe(T);
  });
});
