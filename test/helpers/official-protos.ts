import { existsSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { packageRoot } from '../../src/wire/protos.js';

/** Envoy's published API protos, as shipped in @grpc/grpc-js-xds (a devDependency). */
export const OFFICIAL_DEPS = join(packageRoot(), 'node_modules/@grpc/grpc-js-xds/deps');
export const OFFICIAL_INCLUDE_DIRS = ['envoy-api', 'googleapis', 'xds', 'protoc-gen-validate'].map((d) => join(OFFICIAL_DEPS, d));

/** A protobufjs Root that resolves imports across the official include dirs (and protobufjs' own google/protobuf). */
export function officialRoot(files: string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of OFFICIAL_INCLUDE_DIRS) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  root.loadSync(files, { keepCase: true });
  root.resolveAll();
  return root;
}

/** Our trimmed copy, loaded the same way, for byte-level comparison. */
export function trimmedRoot(files: string[]): protobuf.Root {
  const dir = join(packageRoot(), 'proto');
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (existsSync(join(dir, target)) ? join(dir, target) : target);
  root.loadSync(files, { keepCase: true });
  root.resolveAll();
  return root;
}
