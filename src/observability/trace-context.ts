/** The trace context a request carries, in W3C form (32 and 16 lower-case hex digits). */
export interface TraceContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
}

/** The request headers a trace context is read from (W3C Trace Context, then B3 multi and single). */
export const TRACE_HEADERS = ['traceparent', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-sampled', 'b3'] as const;

const TRACE_ID = /^[0-9a-f]{32}$/;
const TRACE_ID_64 = /^[0-9a-f]{16}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** B3 allows 64-bit trace ids; W3C and OTLP want 128, left-padded with zeros. */
function traceId(raw: string): string | undefined {
  const id = raw.toLowerCase();
  const full = TRACE_ID_64.test(id) ? ZERO_SPAN + id : id;
  return TRACE_ID.test(full) && full !== ZERO_TRACE ? full : undefined;
}

function spanId(raw: string): string | undefined {
  const id = raw.toLowerCase();
  return SPAN_ID.test(id) && id !== ZERO_SPAN ? id : undefined;
}

/**
 * Reads `traceparent` (version 00 layout; later versions are read by their first four fields, as
 * the spec asks), else B3 multi-header, else B3 single. Anything malformed is ignored: a client
 * cannot put arbitrary text on a decision line through these headers.
 */
export function traceContextOf(headers: Readonly<Record<string, string>>): TraceContext | undefined {
  const tp = headers['traceparent'];
  if (tp !== undefined) {
    const [version, t, s, flags] = tp.trim().split('-');
    if (version !== undefined && /^[0-9a-f]{2}$/.test(version) && version !== 'ff' && flags !== undefined && /^[0-9a-f]{2}$/.test(flags)) {
      const tid = t !== undefined && t.length === 32 ? traceId(t) : undefined;
      const sid = s !== undefined ? spanId(s) : undefined;
      if (tid && sid) return { traceId: tid, spanId: sid, sampled: (parseInt(flags, 16) & 1) === 1 };
    }
  }
  const bt = headers['x-b3-traceid'];
  const bs = headers['x-b3-spanid'];
  if (bt !== undefined && bs !== undefined) {
    const tid = traceId(bt.trim());
    const sid = spanId(bs.trim());
    const sampled = headers['x-b3-sampled']?.trim();
    if (tid && sid) return { traceId: tid, spanId: sid, sampled: sampled === '1' || sampled === 'true' };
  }
  const b3 = headers['b3'];
  if (b3 !== undefined) {
    const [t, s, flag] = b3.trim().split('-');
    const tid = t !== undefined ? traceId(t) : undefined;
    const sid = s !== undefined ? spanId(s) : undefined;
    if (tid && sid) return { traceId: tid, spanId: sid, sampled: flag === '1' || flag === 'd' };
  }
  return undefined;
}
