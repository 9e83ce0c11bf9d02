import protobuf from 'protobufjs';
import { checkFieldRules, checkRequiredOneofs, type Rules } from './proto-validate.js';

/**
 * A strict proto3 JSON -> protobufjs object converter (https://protobuf.dev/programming-guides/json/),
 * the mapping Envoy uses for YAML/JSON config. Nothing is coerced or ignored: an unknown key, a
 * value of the wrong JSON type, an unknown enum name or an Any whose type cannot be loaded is an
 * error naming its path. Deprecated fields and enum values are refused too, so shipped configs
 * stay on the supported API.
 */

export interface MessageResolver {
  lookupMessage(fullName: string): protobuf.Type;
}

export class ProtoJsonError extends Error {
  constructor(path: string, problem: string) {
    super(`${path}: ${problem}`);
  }
}

type Obj = Record<string, unknown>;

const INT32 = { min: -(2n ** 31n), max: 2n ** 31n - 1n };
const UINT32 = { min: 0n, max: 2n ** 32n - 1n };
const INT64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };
const UINT64 = { min: 0n, max: 2n ** 64n - 1n };
const INT_RANGES: Record<string, { min: bigint; max: bigint }> = {
  int32: INT32,
  sint32: INT32,
  sfixed32: INT32,
  uint32: UINT32,
  fixed32: UINT32,
  int64: INT64,
  sint64: INT64,
  sfixed64: INT64,
  uint64: UINT64,
  fixed64: UINT64,
};
const WRAPPER_SCALARS: Record<string, string> = {
  '.google.protobuf.DoubleValue': 'double',
  '.google.protobuf.FloatValue': 'float',
  '.google.protobuf.Int64Value': 'int64',
  '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.Int32Value': 'int32',
  '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.BoolValue': 'bool',
  '.google.protobuf.StringValue': 'string',
  '.google.protobuf.BytesValue': 'bytes',
};
/** Types whose JSON form is not an object of fields; inside an Any they sit under "value". */
const SPECIAL_JSON = new Set([
  ...Object.keys(WRAPPER_SCALARS),
  '.google.protobuf.Duration',
  '.google.protobuf.Timestamp',
  '.google.protobuf.Struct',
  '.google.protobuf.Value',
  '.google.protobuf.ListValue',
  '.google.protobuf.FieldMask',
  '.google.protobuf.Any',
]);
const MAX_DURATION_SECONDS = 315_576_000_000n;

export function protoJsonToObject(resolver: MessageResolver, type: protobuf.Type, json: unknown): Obj {
  return new Converter(resolver).message(type, json, '$');
}

export function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

export function isPlainObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value} (${JSON.stringify(value)?.slice(0, 40)})`;
}

function mergedRules(field: protobuf.FieldBase): Rules | undefined {
  const parsed = (field as { parsedOptions?: Obj[] }).parsedOptions;
  if (!parsed) return undefined;
  let rules: Rules | undefined;
  for (const entry of parsed) {
    const r = entry['(validate.rules)'];
    if (isPlainObject(r)) rules = deepMerge(rules ?? {}, r);
  }
  return rules;
}

function deepMerge(a: Obj, b: Obj): Obj {
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isPlainObject(prev) && isPlainObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

function isDeprecated(options: Obj | undefined): boolean {
  return options?.['deprecated'] === true || options?.['(envoy.annotations.disallowed_by_default)'] === true;
}

class Converter {
  constructor(private readonly resolver: MessageResolver) {}

  message(type: protobuf.Type, json: unknown, path: string): Obj {
    const special = this.special(type, json, path);
    if (special) return special;
    if (!isPlainObject(json)) throw new ProtoJsonError(path, `expected an object for ${type.fullName}, got ${describe(json)}`);
    const out: Obj = {};
    const byJsonName = fieldsByJsonName(type);
    const seen = new Map<string, string>();
    for (const [key, value] of Object.entries(json)) {
      const field = byJsonName.get(key);
      const at = `${path}.${key}`;
      if (!field) throw new ProtoJsonError(at, `unknown field of ${type.fullName}`);
      const other = seen.get(field.name);
      if (other !== undefined) throw new ProtoJsonError(at, `field given twice (also as "${other}")`);
      seen.set(field.name, key);
      if (isDeprecated(field.options)) throw new ProtoJsonError(at, `deprecated field of ${type.fullName}`);
      // proto3 JSON: null means "not set", except for google.protobuf.Value which has its own null.
      if (value === null && field.resolvedType?.fullName !== '.google.protobuf.Value') continue;
      out[field.name] = this.field(field, value, at);
    }
    checkRequiredOneofs(type, out, path);
    for (const field of type.fieldsArray) {
      const rules = mergedRules(field);
      if (rules) checkFieldRules(field, rules, out[field.name], `${path}.${field.name}`);
    }
    return out;
  }

  private field(field: protobuf.Field, value: unknown, path: string): unknown {
    if (field instanceof protobuf.MapField) {
      if (!isPlainObject(value)) throw new ProtoJsonError(path, `expected an object (map), got ${describe(value)}`);
      const out: Obj = {};
      for (const [k, v] of Object.entries(value)) {
        this.mapKey(field.keyType, k, `${path}[${JSON.stringify(k)}]`);
        out[k] = this.single(field, v, `${path}[${JSON.stringify(k)}]`);
      }
      return out;
    }
    if (field.repeated) {
      if (!Array.isArray(value)) throw new ProtoJsonError(path, `expected an array, got ${describe(value)}`);
      return value.map((item, i) => this.single(field, item, `${path}[${i}]`));
    }
    return this.single(field, value, path);
  }

  private single(field: protobuf.FieldBase, value: unknown, path: string): unknown {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Type) {
      if (value === null && resolved.fullName !== '.google.protobuf.Value') {
        throw new ProtoJsonError(path, 'null is not a message');
      }
      return this.message(resolved, value, path);
    }
    if (resolved instanceof protobuf.Enum) return this.enumValue(resolved, value, path);
    return scalar(field.type, value, path);
  }

  private mapKey(keyType: string, key: string, path: string): void {
    if (keyType === 'string') return;
    if (keyType === 'bool') {
      if (key !== 'true' && key !== 'false') throw new ProtoJsonError(path, 'bool map key must be "true" or "false"');
      return;
    }
    scalar(keyType, key, path);
  }

  private enumValue(type: protobuf.Enum, value: unknown, path: string): number {
    let name: string | undefined;
    if (typeof value === 'string') {
      if (!(value in type.values)) throw new ProtoJsonError(path, `unknown ${type.fullName} value "${value}"`);
      name = value;
    } else if (typeof value === 'number' && Number.isInteger(value)) {
      name = Object.keys(type.values).find((k) => type.values[k] === value);
      if (name === undefined) throw new ProtoJsonError(path, `${value} is not a ${type.fullName} value`);
    } else {
      throw new ProtoJsonError(path, `expected a ${type.fullName} name, got ${describe(value)}`);
    }
    const options = (type as unknown as { valuesOptions?: Record<string, Obj> }).valuesOptions?.[name];
    if (isDeprecated(options) || options?.['(envoy.annotations.deprecated_at_minor_version_enum)'] !== undefined) {
      throw new ProtoJsonError(path, `deprecated enum value ${type.fullName}.${name}`);
    }
    return type.values[name] as number;
  }

  /** The well-known types with their own JSON forms. Returns undefined for ordinary messages. */
  private special(type: protobuf.Type, json: unknown, path: string): Obj | undefined {
    const name = type.fullName;
    const wrapped = WRAPPER_SCALARS[name];
    if (wrapped) return { value: scalar(wrapped, json, path) };
    switch (name) {
      case '.google.protobuf.Duration':
        return duration(json, path);
      case '.google.protobuf.Timestamp':
        return timestamp(json, path);
      case '.google.protobuf.Struct':
        return this.struct(type, json, path);
      case '.google.protobuf.Value':
        return this.value(type, json, path);
      case '.google.protobuf.ListValue':
        return this.listValue(type, json, path);
      case '.google.protobuf.FieldMask':
        if (typeof json !== 'string') throw new ProtoJsonError(path, `expected a FieldMask string, got ${describe(json)}`);
        return { paths: json === '' ? [] : json.split(',').map((p) => p.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())) };
      case '.google.protobuf.Any':
        return this.any(type, json, path);
      default:
        return undefined;
    }
  }

  private any(type: protobuf.Type, json: unknown, path: string): Obj {
    if (!isPlainObject(json)) throw new ProtoJsonError(path, `expected an Any object, got ${describe(json)}`);
    const typeUrl = json['@type'];
    if (typeof typeUrl !== 'string' || !typeUrl.includes('/')) {
      throw new ProtoJsonError(`${path}.@type`, 'an Any needs "@type": "type.googleapis.com/<message>"');
    }
    const innerName = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
    let inner: protobuf.Type;
    try {
      inner = this.resolver.lookupMessage(innerName);
    } catch (err) {
      throw new ProtoJsonError(`${path}.@type`, `cannot load ${innerName}: ${(err as Error).message}`);
    }
    const { ['@type']: _drop, ...rest } = json;
    let innerObject: Obj;
    if (SPECIAL_JSON.has(inner.fullName)) {
      const keys = Object.keys(rest);
      if (keys.length !== 1 || keys[0] !== 'value') throw new ProtoJsonError(path, `an Any of ${innerName} takes exactly one "value"`);
      innerObject = this.message(inner, rest['value'], `${path}.value`);
    } else {
      innerObject = this.message(inner, rest, path);
    }
    const bytes = inner.encode(inner.fromObject(innerObject)).finish();
    return { [fieldName(type, 'type_url')]: typeUrl, [fieldName(type, 'value')]: bytes };
  }

  private struct(type: protobuf.Type, json: unknown, path: string): Obj {
    if (!isPlainObject(json)) throw new ProtoJsonError(path, `expected a Struct object, got ${describe(json)}`);
    const valueType = (type.fields[fieldName(type, 'fields')]?.resolvedType ?? null) as protobuf.Type | null;
    if (!valueType) throw new Error('google.protobuf.Struct is not resolved');
    const fields: Obj = {};
    for (const [k, v] of Object.entries(json)) fields[k] = this.value(valueType, v, `${path}.${k}`);
    return { [fieldName(type, 'fields')]: fields };
  }

  private listValue(type: protobuf.Type, json: unknown, path: string): Obj {
    if (!Array.isArray(json)) throw new ProtoJsonError(path, `expected a ListValue array, got ${describe(json)}`);
    const valueType = type.fields[fieldName(type, 'values')]?.resolvedType as protobuf.Type;
    return { [fieldName(type, 'values')]: json.map((v, i) => this.value(valueType, v, `${path}[${i}]`)) };
  }

  private value(type: protobuf.Type, json: unknown, path: string): Obj {
    const f = (n: string) => fieldName(type, n);
    if (json === null) return { [f('null_value')]: 0 };
    if (typeof json === 'number') {
      if (!Number.isFinite(json)) throw new ProtoJsonError(path, 'a Value number must be finite');
      return { [f('number_value')]: json };
    }
    if (typeof json === 'string') return { [f('string_value')]: json };
    if (typeof json === 'boolean') return { [f('bool_value')]: json };
    if (Array.isArray(json)) {
      return { [f('list_value')]: this.listValue(type.fields[f('list_value')]?.resolvedType as protobuf.Type, json, path) };
    }
    if (isPlainObject(json)) {
      return { [f('struct_value')]: this.struct(type.fields[f('struct_value')]?.resolvedType as protobuf.Type, json, path) };
    }
    throw new ProtoJsonError(path, `not representable as a google.protobuf.Value: ${describe(json)}`);
  }
}

const jsonNameCache = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();
function fieldsByJsonName(type: protobuf.Type): Map<string, protobuf.Field> {
  let map = jsonNameCache.get(type);
  if (!map) {
    map = new Map();
    for (const field of type.fieldsArray) {
      map.set(field.name, field);
      map.set(lowerCamel(field.name), field);
    }
    jsonNameCache.set(type, map);
  }
  return map;
}

/** protobufjs' bundled well-known types use camelCase names, loaded .proto files keep snake_case. */
function fieldName(type: protobuf.Type, snake: string): string {
  if (type.fields[snake]) return snake;
  const camel = lowerCamel(snake);
  if (type.fields[camel]) return camel;
  throw new Error(`${type.fullName} has no field ${snake}`);
}

function scalar(kind: string, value: unknown, path: string): unknown {
  switch (kind) {
    case 'string':
      if (typeof value !== 'string') throw new ProtoJsonError(path, `expected a string, got ${describe(value)}`);
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw new ProtoJsonError(path, `expected a boolean, got ${describe(value)}`);
      return value;
    case 'bytes':
      if (typeof value !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) {
        throw new ProtoJsonError(path, `expected base64 bytes, got ${describe(value)}`);
      }
      return Buffer.from(value, 'base64');
    case 'double':
    case 'float':
      if (typeof value === 'number') return value;
      if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return Number(value);
      if (typeof value === 'string' && /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(value)) return Number(value);
      throw new ProtoJsonError(path, `expected a number, got ${describe(value)}`);
    default: {
      const range = INT_RANGES[kind];
      if (!range) throw new ProtoJsonError(path, `unsupported scalar type ${kind}`);
      let big: bigint;
      if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value);
      else if (typeof value === 'string' && /^-?\d+$/.test(value)) big = BigInt(value);
      else throw new ProtoJsonError(path, `expected an integer (${kind}), got ${describe(value)}`);
      if (big < range.min || big > range.max) throw new ProtoJsonError(path, `${value} is out of range for ${kind}`);
      return kind.endsWith('64') ? big.toString() : Number(big);
    }
  }
}

function duration(json: unknown, path: string): Obj {
  const m = typeof json === 'string' ? /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(json) : null;
  if (!m) throw new ProtoJsonError(path, `expected a Duration string like "0.2s", got ${describe(json)}`);
  const seconds = BigInt(m[2] ?? '0');
  if (seconds > MAX_DURATION_SECONDS) throw new ProtoJsonError(path, 'Duration out of range');
  const nanos = Number((m[3] ?? '').padEnd(9, '0'));
  const sign = m[1] ? -1 : 1;
  return { seconds: (BigInt(sign) * seconds).toString(), nanos: sign * nanos };
}

function timestamp(json: unknown, path: string): Obj {
  const ok = typeof json === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/.test(json);
  const ms = ok ? Date.parse(json) : NaN;
  if (!Number.isFinite(ms)) throw new ProtoJsonError(path, `expected an RFC 3339 timestamp, got ${describe(json)}`);
  const frac = /\.(\d{1,9})/.exec(json as string)?.[1] ?? '';
  return { seconds: String(Math.floor(ms / 1000)), nanos: Number(frac.padEnd(9, '0')) };
}
