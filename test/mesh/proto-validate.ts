import protobuf from 'protobufjs';

/**
 * The subset of protoc-gen-validate rules Envoy's API uses for static config (Envoy runs these
 * validators when it loads a bootstrap, so a config that breaks them never starts). Applied to
 * values already converted by proto-json.ts.
 */

export type Rules = Record<string, unknown>;
type Obj = Record<string, unknown>;

export class ProtoRuleError extends Error {
  constructor(path: string, problem: string) {
    super(`${path}: ${problem}`);
  }
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `oneof x { option (validate.required) = true; }` - exactly one member must be set. */
export function checkRequiredOneofs(type: protobuf.Type, converted: Obj, path: string): void {
  for (const oneof of type.oneofsArray) {
    const set = oneof.oneof.filter((name) => converted[name] !== undefined);
    if (set.length > 1) throw new ProtoRuleError(path, `oneof ${oneof.name} has several members set: ${set.join(', ')}`);
    if (set.length === 0 && oneof.options?.['(validate.required)'] === true) {
      throw new ProtoRuleError(path, `oneof ${oneof.name} is required: set one of ${oneof.oneof.join(', ')}`);
    }
  }
}

export function checkFieldRules(field: protobuf.Field, rules: Rules, value: unknown, path: string): void {
  const inRealOneof = field.partOf !== null && !field.partOf.name.startsWith('_');
  const proto3Optional = field.partOf !== null && field.partOf.name.startsWith('_');
  if (value === undefined) {
    // PGV only validates the member of a oneof that is set.
    if (inRealOneof) return;
    if (isObj(rules['message']) && rules['message']['required'] === true) throw new ProtoRuleError(path, 'required');
    for (const kind of ['duration', 'timestamp', 'any'] as const) {
      const r = rules[kind];
      if (isObj(r) && r['required'] === true) throw new ProtoRuleError(path, 'required');
    }
    // PGV validates unset scalars as their default value, except members of an unset oneof.
    if (proto3Optional || field.resolvedType instanceof protobuf.Type) return;
    if (field instanceof protobuf.MapField) value = {};
    else if (field.repeated) value = [];
    else value = defaultScalar(field);
  }
  if (field instanceof protobuf.MapField) {
    checkMap(rules, value as Obj, path);
    return;
  }
  if (field.repeated) {
    checkRepeated(field, rules, value as unknown[], path);
    return;
  }
  checkSingle(field, rules, value, path);
}

function defaultScalar(field: protobuf.Field): unknown {
  if (field.resolvedType instanceof protobuf.Enum) return 0;
  if (field.type === 'string') return '';
  if (field.type === 'bool') return false;
  if (field.type === 'bytes') return new Uint8Array();
  return 0;
}

function checkMap(rules: Rules, value: Obj, path: string): void {
  const r = rules['map'];
  if (!isObj(r)) return;
  const pairs = Object.keys(value).length;
  if (typeof r['min_pairs'] === 'number' && pairs < r['min_pairs']) throw new ProtoRuleError(path, `needs at least ${r['min_pairs']} entries`);
  if (typeof r['max_pairs'] === 'number' && pairs > r['max_pairs']) throw new ProtoRuleError(path, `allows at most ${r['max_pairs']} entries`);
  const keyRules = r['keys'];
  if (isObj(keyRules) && isObj(keyRules['string'])) {
    for (const k of Object.keys(value)) checkString(keyRules['string'], k, `${path} key ${JSON.stringify(k)}`);
  }
}

function checkRepeated(field: protobuf.Field, rules: Rules, value: unknown[], path: string): void {
  const r = rules['repeated'];
  if (!isObj(r)) return;
  if (typeof r['min_items'] === 'number' && value.length < r['min_items']) throw new ProtoRuleError(path, `needs at least ${r['min_items']} items`);
  if (typeof r['max_items'] === 'number' && value.length > r['max_items']) throw new ProtoRuleError(path, `allows at most ${r['max_items']} items`);
  if (r['unique'] === true && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) throw new ProtoRuleError(path, 'items must be unique');
  const items = r['items'];
  if (isObj(items)) value.forEach((item, i) => checkSingle(field, items, item, `${path}[${i}]`));
}

function checkSingle(field: protobuf.Field, rules: Rules, value: unknown, path: string): void {
  for (const [kind, r] of Object.entries(rules)) {
    if (!isObj(r)) continue;
    switch (kind) {
      case 'string':
        checkString(r, value as string, path);
        break;
      case 'duration':
        checkOrdered(r, durationNanos(value as Obj), path, (v) => durationNanos(v as Obj));
        break;
      case 'any':
        checkAny(r, value as Obj, path);
        break;
      case 'enum':
        checkIn(r, value, path);
        break;
      case 'message':
      case 'repeated':
      case 'map':
        break;
      default:
        if (['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'fixed32', 'fixed64', 'sfixed32', 'sfixed64', 'double', 'float'].includes(kind)) {
          // Wrapper types carry their rule on the inner value.
          const raw = isObj(value) && 'value' in value ? value['value'] : value;
          checkOrdered(r, Number(raw), path, Number);
        }
    }
  }
  void field;
}

function checkString(r: Obj, value: string, path: string): void {
  const chars = [...value].length;
  const bytes = Buffer.byteLength(value);
  const num = (k: string) => (typeof r[k] === 'number' || typeof r[k] === 'string' ? Number(r[k]) : undefined);
  const minLen = num('min_len');
  const maxLen = num('max_len');
  const minBytes = num('min_bytes');
  const maxBytes = num('max_bytes');
  if (minLen !== undefined && chars < minLen) throw new ProtoRuleError(path, `must be at least ${minLen} characters`);
  if (maxLen !== undefined && chars > maxLen) throw new ProtoRuleError(path, `must be at most ${maxLen} characters`);
  if (minBytes !== undefined && bytes < minBytes) throw new ProtoRuleError(path, `must be at least ${minBytes} bytes`);
  if (maxBytes !== undefined && bytes > maxBytes) throw new ProtoRuleError(path, `must be at most ${maxBytes} bytes`);
  if (typeof r['prefix'] === 'string' && !value.startsWith(r['prefix'])) throw new ProtoRuleError(path, `must start with ${r['prefix']}`);
  if (typeof r['suffix'] === 'string' && !value.endsWith(r['suffix'])) throw new ProtoRuleError(path, `must end with ${r['suffix']}`);
  const wkr = r['well_known_regex'];
  if ((wkr === 'HTTP_HEADER_NAME' || wkr === 'HTTP_HEADER_VALUE') && /[\0\r\n]/.test(value)) {
    throw new ProtoRuleError(path, `not a valid ${wkr}`);
  }
  checkIn(r, value, path);
}

function checkIn(r: Obj, value: unknown, path: string): void {
  const list = (k: string) => (Array.isArray(r[k]) ? (r[k] as unknown[]) : r[k] === undefined ? undefined : [r[k]]);
  const inList = list('in');
  const notIn = list('not_in');
  if (inList && !inList.some((v) => v == value)) throw new ProtoRuleError(path, `must be one of ${JSON.stringify(inList)}`);
  if (notIn?.some((v) => v == value)) throw new ProtoRuleError(path, `must not be ${JSON.stringify(value)}`);
  if (r['const'] !== undefined && r['const'] != value) throw new ProtoRuleError(path, `must be ${JSON.stringify(r['const'])}`);
}

function checkAny(r: Obj, value: Obj, path: string): void {
  const url = (value['type_url'] ?? value['typeUrl']) as string;
  const inList = r['in'];
  if (Array.isArray(inList) && !inList.includes(url)) throw new ProtoRuleError(path, `Any must be one of ${inList.join(', ')}`);
}

function durationNanos(d: Obj): number {
  return Number(d['seconds'] ?? 0) * 1e9 + Number(d['nanos'] ?? 0);
}

/** gt/gte/lt/lte/const for numbers and durations; lt < gt means "outside the range", as in PGV. */
function checkOrdered(r: Obj, value: number, path: string, conv: (v: unknown) => number): void {
  const bound = (k: string) => (r[k] === undefined ? undefined : conv(r[k]));
  const gt = bound('gt');
  const gte = bound('gte');
  const lt = bound('lt');
  const lte = bound('lte');
  const c = bound('const');
  if (c !== undefined && value !== c) throw new ProtoRuleError(path, `must equal ${c}`);
  const low = gt ?? gte;
  const high = lt ?? lte;
  const aboveLow = low === undefined || (gt !== undefined ? value > gt : value >= (gte as number));
  const belowHigh = high === undefined || (lt !== undefined ? value < lt : value <= (lte as number));
  const ok = low !== undefined && high !== undefined && high < low ? aboveLow || belowHigh : aboveLow && belowHigh;
  if (!ok) throw new ProtoRuleError(path, `out of range (${JSON.stringify(r)})`);
  if (Array.isArray(r['in']) && !r['in'].some((v) => conv(v) === value)) throw new ProtoRuleError(path, `must be one of ${JSON.stringify(r['in'])}`);
}
