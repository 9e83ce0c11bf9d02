import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { protoJsonToObject } from './proto-json.js';

/**
 * Envoy's own published API (the protos vendored by @grpc/grpc-js-xds), loaded with protobufjs so
 * the configs in envoy/ are checked against the real schema, not a hand-written imitation.
 */
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEPS = join(REPO_ROOT, 'node_modules/@grpc/grpc-js-xds/deps');
const PROTOBUFJS_DIR = dirname(createRequire(import.meta.url).resolve('protobufjs/package.json'));
const INCLUDE_DIRS = [
  join(DEPS, 'envoy-api'),
  join(DEPS, 'xds'),
  join(DEPS, 'googleapis'),
  join(DEPS, 'protoc-gen-validate'),
  // google/protobuf/descriptor.proto, needed by the validate/udpa option extensions.
  PROTOBUFJS_DIR,
];
/** Roots whose messages may appear as the `@type` of an Any (typed_config and friends). */
const ANY_SEARCH_ROOTS = [join(DEPS, 'envoy-api/envoy'), join(DEPS, 'xds/xds/type'), join(DEPS, 'xds/udpa/type')];

export const BOOTSTRAP_TYPE = 'envoy.config.bootstrap.v3.Bootstrap';

export class EnvoyProtos {
  readonly root = new protobuf.Root();
  private index: Map<string, string> | undefined;

  constructor() {
    this.root.resolvePath = (_origin: string, target: string) => {
      for (const dir of INCLUDE_DIRS) {
        const candidate = join(dir, target);
        if (existsSync(candidate)) return candidate;
      }
      return target;
    };
    this.load('envoy/config/bootstrap/v3/bootstrap.proto');
  }

  private load(file: string): void {
    this.root.loadSync(file, { keepCase: true });
    this.root.resolveAll();
  }

  /** Resolves a message by full name, loading the file that declares it when it is not loaded yet. */
  lookupMessage(fullName: string): protobuf.Type {
    const found = this.tryLookup(fullName);
    if (found) return found;
    const file = this.fileIndex().get(fullName);
    if (!file) throw new Error(`no proto declares message ${fullName}`);
    this.load(file);
    const loaded = this.tryLookup(fullName);
    if (!loaded) throw new Error(`${file} loaded but ${fullName} is not a message`);
    return loaded;
  }

  private tryLookup(fullName: string): protobuf.Type | undefined {
    const found = this.root.lookup(fullName);
    return found instanceof protobuf.Type ? found : undefined;
  }

  /** Top-level message name -> proto file, from the package and message declarations. */
  private fileIndex(): Map<string, string> {
    if (this.index) return this.index;
    const index = new Map<string, string>();
    for (const searchRoot of ANY_SEARCH_ROOTS) {
      for (const abs of walkProtos(searchRoot)) {
        const text = readFileSync(abs, 'utf8');
        const pkg = /^package\s+([\w.]+)\s*;/m.exec(text)?.[1];
        if (!pkg) continue;
        const include = INCLUDE_DIRS.find((dir) => abs.startsWith(dir + '/'));
        if (!include) continue;
        for (const match of text.matchAll(/^message\s+(\w+)\s*\{/gm)) {
          index.set(`${pkg}.${match[1]}`, abs.slice(include.length + 1));
        }
      }
    }
    this.index = index;
    return index;
  }
}

function* walkProtos(dir: string): Generator<string> {
  for (const entry of readdirSync(dir)) {
    const abs = join(dir, entry);
    if (statSync(abs).isDirectory()) yield* walkProtos(abs);
    else if (entry.endsWith('.proto')) yield abs;
  }
}

let shared: EnvoyProtos | undefined;
export function envoyProtos(): EnvoyProtos {
  shared ??= new EnvoyProtos();
  return shared;
}

export interface DecodedMessage {
  /** The message as Envoy would hold it: encoded from the strict conversion, then decoded. */
  readonly message: protobuf.Message;
  /** A JSON view of the decoded message: original field names, enum names, Any expanded with `@type`. */
  readonly view: Record<string, unknown>;
}

/**
 * Strict proto3-JSON decode of `json` into `typeName`, round-tripped through the wire format.
 * Throws on unknown fields, wrong types, unknown enum names, unresolvable Any types, deprecated
 * fields and protoc-gen-validate rule violations.
 */
export function decodeEnvoyMessage(typeName: string, json: unknown, protos = envoyProtos()): DecodedMessage {
  const type = protos.lookupMessage(typeName);
  const object = protoJsonToObject(protos, type, json);
  const built = type.fromObject(object);
  const invalid = type.verify(built);
  if (invalid) throw new Error(`protobufjs rejected the converted ${typeName}: ${invalid}`);
  const bytes = type.encode(built).finish();
  const message = type.decode(bytes);
  const view = type.toObject(message, { json: true, enums: String, longs: Number, bytes: String, defaults: false });
  return { message, view };
}
