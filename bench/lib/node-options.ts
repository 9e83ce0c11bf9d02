import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { packageRoot } from '../../src/wire/protos.js';

export const SIDECAR_MANIFEST = 'deploy/overlays/sidecar/deployment.yaml';

interface Container {
  name?: string;
  env?: { name?: string; value?: string }[];
}

/**
 * NODE_OPTIONS of the zt-authz container in the sidecar manifest. The harness runs the server
 * under test (and the baseline, so both share one runtime) with exactly these, read from the
 * manifest so the figures are those of the deployed process and cannot drift from it: V8's
 * default heap limit on a large machine lets the old generation grow to several times its live
 * size before collecting, which a 256 MiB pod never sees.
 */
export function deployedNodeOptions(): string {
  const file = join(packageRoot(), SIDECAR_MANIFEST);
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const containers = (doc.toJS() as { spec?: { template?: { spec?: { containers?: Container[] } } } } | null)?.spec?.template?.spec?.containers ?? [];
    const c = containers.find((x) => x.name === 'zt-authz');
    if (c) return c.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
  }
  throw new Error(`${SIDECAR_MANIFEST}: no zt-authz container`);
}
