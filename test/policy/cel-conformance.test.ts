import { Environment } from '@marcbachmann/cel-js';
import { tests } from '@bufbuild/cel-spec/testdata/conformance.js';
import { describe, expect, it } from 'vitest';
import { CEL_ENV_OPTIONS } from '../../src/policy/cel.js';

/**
 * The CEL specification's conformance cases (google/cel-spec, as packaged in @bufbuild/cel-spec)
 * for the sections README "CEL conditions" claims, run through @marcbachmann/cel-js with the
 * options the policy uses. Cases that need protobuf messages, bindings, a container or a disabled
 * type checker are not in scope (conditions are always type-checked and see no proto messages).
 */
const CLAIMED = [
  'basic/self_eval_zeroish',
  'basic/functions',
  'comparisons/in_list_literal',
  'comparisons/in_map_literal',
  'conversions/bool',
  'conversions/bytes',
  'conversions/double',
  'fields/in',
  'fields/map_fields',
  'fp_math/fp_math',
  'integer_math/uint64_math',
  'lists/concatenation',
  'lists/size',
  'logic/AND',
  'logic/NOT',
  'logic/OR',
  'logic/conditional',
  'macros/exists',
  'macros/filter',
  'macros/map',
  'macros/nested',
  'parse/repeat',
  'parse/selectors',
  'parse/string_literals',
  'string/bytes_concat',
  'string/concatenation',
  'string/contains',
  'string/ends_with',
  'string/size',
  'string/starts_with',
  'timestamps/comparisons',
  'timestamps/duration_converters',
  'timestamps/duration_equality',
  'timestamps/timestamp_equality',
  'timestamps/timestamp_selectors',
];

interface Case {
  name?: string;
  expr: string;
  value?: Record<string, unknown>;
  evalError?: unknown;
  bindings?: unknown;
  container?: string;
  typeEnv?: unknown;
  disableCheck?: boolean;
  checkOnly?: boolean;
  typedResult?: unknown;
}
interface Suite {
  name: string;
  suites?: Suite[];
  tests?: { original: Case }[];
}

type Expected = { t: string; v: unknown };
function expected(v: Record<string, unknown>): Expected {
  if ('int64Value' in v) return { t: 'int', v: BigInt(v.int64Value as string) };
  if ('uint64Value' in v) return { t: 'uint', v: BigInt(v.uint64Value as string) };
  if ('doubleValue' in v) return { t: 'double', v: Number(v.doubleValue) };
  if ('stringValue' in v) return { t: 'string', v: v.stringValue };
  if ('boolValue' in v) return { t: 'bool', v: v.boolValue };
  if ('nullValue' in v) return { t: 'null', v: null };
  if ('bytesValue' in v) return { t: 'bytes', v: Buffer.from(v.bytesValue as string, 'base64') };
  if ('listValue' in v) return { t: 'list', v: (((v.listValue as { values?: Record<string, unknown>[] }).values) ?? []).map(expected) };
  if ('mapValue' in v) {
    const entries = ((v.mapValue as { entries?: { key: Record<string, unknown>; value: Record<string, unknown> }[] }).entries) ?? [];
    return { t: 'map', v: entries.map((e) => [expected(e.key), expected(e.value)]) };
  }
  return { t: 'unsupported', v };
}

function matches(got: unknown, exp: Expected): boolean {
  switch (exp.t) {
    case 'int':
      return got === exp.v;
    case 'uint':
      return (typeof got === 'bigint' && got === exp.v) || (typeof got === 'object' && got !== null && BigInt((got as { valueOf(): bigint }).valueOf()) === exp.v);
    case 'double':
      return typeof got === 'number' && (Object.is(got, exp.v) || got === exp.v || (Number.isNaN(got) && Number.isNaN(exp.v)));
    case 'string':
    case 'bool':
      return got === exp.v;
    case 'null':
      return got === null;
    case 'bytes':
      return got instanceof Uint8Array && Buffer.from(got).equals(exp.v as Buffer);
    case 'list':
      return Array.isArray(got) && got.length === (exp.v as Expected[]).length && got.every((g, i) => matches(g, (exp.v as Expected[])[i]!));
    case 'map': {
      const entries = exp.v as [Expected, Expected][];
      const m = got instanceof Map ? got : new Map(Object.entries((got ?? {}) as object));
      return m.size === entries.length && entries.every(([k, v]) => [...m].some(([gk, gv]) => matches(gk, k) && matches(gv, v)));
    }
    default:
      return false;
  }
}

const inScope = (c: Case) => !c.bindings && !c.container && !c.typeEnv && !c.disableCheck && !c.checkOnly && !c.typedResult;

const env = new Environment(CEL_ENV_OPTIONS);
const sections = new Map<string, Case[]>();
for (const file of (tests as Suite).suites ?? []) {
  for (const section of file.suites ?? []) sections.set(`${file.name}/${section.name}`, (section.tests ?? []).map((t) => t.original).filter(inScope));
}

describe('CEL conformance (cel-spec) for the claimed sections', () => {
  it('every claimed section exists and has cases in scope', () => {
    for (const name of CLAIMED) expect(sections.get(name)?.length ?? 0, name).toBeGreaterThan(0);
    expect(CLAIMED.reduce((n, s) => n + sections.get(s)!.length, 0)).toBeGreaterThanOrEqual(380);
  });

  it.each(CLAIMED)('%s', (name) => {
    const failures: string[] = [];
    for (const c of sections.get(name) ?? []) {
      let got: unknown;
      let error: unknown;
      try {
        got = env.evaluate(c.expr);
      } catch (err) {
        error = err;
      }
      const ok = c.evalError !== undefined ? error !== undefined : error === undefined && matches(got, c.value === undefined ? { t: 'bool', v: true } : expected(c.value));
      if (!ok) failures.push(`${c.name ?? c.expr}: ${c.expr} gave ${error === undefined ? String(got) : (error as Error).message}`);
    }
    expect(failures).toEqual([]);
  });
});
