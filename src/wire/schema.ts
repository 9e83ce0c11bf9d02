import { existsSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { PROTO_DIR } from './proto-dir.js';

/**
 * What the selective decoder knows of a message: derived once, at startup, from the protos in
 * proto/ through protobufjs reflection, so no field number or wire type is written out by hand.
 */
export interface MessageSchema {
  readonly name: string;
  /** Field numbers by field name (snake_case, as in the .proto). */
  readonly field: Readonly<Record<string, number>>;
  /** Declared wire type by field number; -1 for a number the message does not declare. */
  readonly wireType: Int8Array;
  /** Wire type of one element of a packable repeated field (which may also come packed, as 2); else -1. */
  readonly packedElement: Int8Array;
  /** The schema of each message-typed field (a map field's is its entry), to walk a skipped one. */
  readonly nested: readonly (MessageSchema | undefined)[];
  /**
   * 1 for a field (or repeated element) that protobufjs reads as a 32-bit varint: int32, uint32,
   * sint32, bool and enums. It reads those 5 bytes at a time (see Reader.varint32).
   */
  readonly varint32: Uint8Array;
}

const WIRE_TYPE_LEN = 2;

function elementWireType(field: protobuf.Field): number {
  if (field.resolvedType instanceof protobuf.Type) return WIRE_TYPE_LEN;
  if (field.resolvedType instanceof protobuf.Enum) return 0;
  const wt = (protobuf.types.basic as Record<string, number | undefined>)[field.type];
  if (wt === undefined) throw new Error(`zt-authz: no wire type for ${field.fullName} (${field.type})`);
  return wt;
}

/** The scalar types protobufjs decodes with Reader.uint32() (int64 and its kin go through readLongVarint). */
const VARINT32_TYPES = new Set(['int32', 'uint32', 'sint32', 'bool']);

function isVarint32(field: protobuf.Field): boolean {
  return field.resolvedType instanceof protobuf.Enum || (field.resolvedType === null && VARINT32_TYPES.has(field.type));
}

function isPackable(field: protobuf.Field): boolean {
  return field.repeated && !field.map && (field.resolvedType instanceof protobuf.Enum || (protobuf.types.packed as Record<string, number | undefined>)[field.type] !== undefined);
}

interface Draft {
  name: string;
  field: Record<string, number>;
  wireType: Int8Array;
  packedElement: Int8Array;
  nested: (MessageSchema | undefined)[];
  varint32: Uint8Array;
}

function draft(name: string, fields: readonly { id: number }[]): Draft {
  const size = fields.reduce((m, f) => Math.max(m, f.id), 0) + 1;
  return { name, field: {}, wireType: new Int8Array(size).fill(-1), packedElement: new Int8Array(size).fill(-1), nested: new Array<MessageSchema | undefined>(size).fill(undefined), varint32: new Uint8Array(size) };
}

/** Schemas of `type` and every message reachable from it; recursive types (Struct, Value) share theirs. */
function schemaOf(type: protobuf.Type, done: Map<string, MessageSchema>): MessageSchema {
  const known = done.get(type.fullName);
  if (known) return known;
  const fields = type.fieldsArray.map((f) => f.resolve());
  const s = draft(type.fullName, fields);
  done.set(type.fullName, s);
  for (const f of fields) {
    s.field[f.name] = f.id;
    if (f.map) {
      const mf = f as unknown as protobuf.MapField;
      // A map entry is a message {key 1, value 2}.
      const entry = draft(`${f.fullName}.entry`, [{ id: 1 }, { id: 2 }]);
      entry.field.key = 1;
      entry.field.value = 2;
      const keyWt = (protobuf.types.basic as Record<string, number | undefined>)[mf.keyType];
      if (keyWt === undefined) throw new Error(`zt-authz: no wire type for the key of ${f.fullName}`);
      entry.wireType[1] = keyWt;
      entry.wireType[2] = elementWireType(f);
      if (VARINT32_TYPES.has(mf.keyType)) entry.varint32[1] = 1;
      if (isVarint32(f)) entry.varint32[2] = 1;
      if (f.resolvedType instanceof protobuf.Type) entry.nested[2] = schemaOf(f.resolvedType, done);
      s.wireType[f.id] = WIRE_TYPE_LEN;
      s.nested[f.id] = entry;
      continue;
    }
    s.wireType[f.id] = elementWireType(f);
    if (isVarint32(f)) s.varint32[f.id] = 1;
    if (isPackable(f)) s.packedElement[f.id] = elementWireType(f);
    if (f.resolvedType instanceof protobuf.Type) s.nested[f.id] = schemaOf(f.resolvedType, done);
  }
  return s;
}

/** Every message schema reachable from CheckRequest, by full name (without the leading dot). */
export function loadCheckRequestSchemas(): ReadonlyMap<string, MessageSchema> {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (existsSync(join(PROTO_DIR, target)) ? join(PROTO_DIR, target) : target);
  root.loadSync('envoy/service/auth/v3/external_auth.proto', { keepCase: true });
  root.resolveAll();
  const done = new Map<string, MessageSchema>();
  schemaOf(root.lookupType('envoy.service.auth.v3.CheckRequest'), done);
  return new Map([...done].map(([name, s]) => [name.replace(/^\./, ''), s]));
}

/** The schema of `name`, which must declare every field in `reads` (the decoder's view of it). */
export function schemaFor<const F extends string>(all: ReadonlyMap<string, MessageSchema>, name: string, reads: readonly F[]): MessageSchema & { readonly field: Readonly<Record<F, number>> } {
  const s = all.get(name);
  if (s === undefined) throw new Error(`zt-authz: proto/ has no message ${name}`);
  for (const f of reads) if (s.field[f] === undefined) throw new Error(`zt-authz: ${name} has no field ${f}`);
  return s as MessageSchema & { readonly field: Readonly<Record<F, number>> };
}
