import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import YAML from 'yaml';

/**
 * The slice of `kustomize build` the shipped overlays use: resources (files and directories),
 * configMapGenerator (files, literals), namespace, labels and commonLabels. Anything else in a
 * kustomization is an error, so a feature added to deploy/ without support here fails loudly
 * instead of being silently skipped. Generated ConfigMaps keep their plain names (kustomize adds a
 * content hash and rewrites references to match, which changes nothing for these checks).
 */

export type Manifest = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
};

export interface Built {
  readonly resources: Manifest[];
  /** Every file read: kustomizations, resources, generator inputs (absolute paths). */
  readonly files: Set<string>;
}

const KUSTOMIZATION_KEYS = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'labels', 'commonLabels', 'configMapGenerator', 'generatorOptions']);
const GENERATOR_KEYS = new Set(['name', 'files', 'literals', 'options']);
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PriorityClass', 'StorageClass', 'PersistentVolume', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']);
const POD_TEMPLATE_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);

export function kustomizationFile(dir: string): string | undefined {
  for (const name of ['kustomization.yaml', 'kustomization.yml', 'Kustomization']) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

export function parseManifests(file: string): Manifest[] {
  const docs = YAML.parseAllDocuments(readFileSync(file, 'utf8'), { uniqueKeys: true });
  const out: Manifest[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    const m = value as Manifest;
    if (typeof m.apiVersion !== 'string' || typeof m.kind !== 'string' || typeof m.metadata?.name !== 'string') {
      throw new Error(`${file}: every document needs apiVersion, kind and metadata.name`);
    }
    out.push(m);
  }
  return out;
}

export function kustomizeBuild(dir: string): Built {
  const files = new Set<string>();
  const resources = build(resolve(dir), files, []);
  const seen = new Set<string>();
  for (const r of resources) {
    const id = `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;
    if (seen.has(id)) throw new Error(`${dir}: ${id} is defined twice`);
    seen.add(id);
  }
  return { resources, files };
}

function build(dir: string, files: Set<string>, stack: string[]): Manifest[] {
  if (stack.includes(dir)) throw new Error(`kustomization cycle: ${[...stack, dir].join(' -> ')}`);
  const kfile = kustomizationFile(dir);
  if (!kfile) throw new Error(`${dir}: no kustomization.yaml`);
  files.add(kfile);
  const k = YAML.parse(readFileSync(kfile, 'utf8'), { uniqueKeys: true }) as Record<string, unknown>;
  for (const key of Object.keys(k)) {
    if (!KUSTOMIZATION_KEYS.has(key)) throw new Error(`${kfile}: "${key}" is not supported by the test resolver`);
  }
  if (k['kind'] !== 'Kustomization' || k['apiVersion'] !== 'kustomize.config.k8s.io/v1beta1') {
    throw new Error(`${kfile}: expected apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization`);
  }

  const out: Manifest[] = [];
  for (const entry of (k['resources'] as string[] | undefined) ?? []) {
    const target = resolve(dir, entry);
    if (!existsSync(target)) throw new Error(`${kfile}: resource ${entry} does not exist`);
    if (statSync(target).isDirectory()) {
      out.push(...build(target, files, [...stack, dir]));
    } else {
      // kustomize loads plain files only from inside the kustomization root.
      insideRoot(dir, target, kfile, entry);
      files.add(target);
      out.push(...parseManifests(target));
    }
  }

  for (const gen of (k['configMapGenerator'] as Record<string, unknown>[] | undefined) ?? []) {
    for (const key of Object.keys(gen)) {
      if (!GENERATOR_KEYS.has(key)) throw new Error(`${kfile}: configMapGenerator "${key}" is not supported`);
    }
    const data: Record<string, string> = {};
    for (const spec of (gen['files'] as string[] | undefined) ?? []) {
      const eq = spec.indexOf('=');
      const key = eq >= 0 ? spec.slice(0, eq) : spec.split('/').at(-1)!;
      const path = eq >= 0 ? spec.slice(eq + 1) : spec;
      const target = resolve(dir, path);
      insideRoot(dir, target, kfile, path);
      if (key in data) throw new Error(`${kfile}: configMapGenerator key ${key} given twice`);
      files.add(target);
      data[key] = readFileSync(target, 'utf8');
    }
    for (const literal of (gen['literals'] as string[] | undefined) ?? []) {
      const eq = literal.indexOf('=');
      if (eq <= 0) throw new Error(`${kfile}: literal ${literal} is not KEY=VALUE`);
      data[literal.slice(0, eq)] = literal.slice(eq + 1);
    }
    out.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: String(gen['name']) }, data });
  }

  const namespace = k['namespace'];
  if (typeof namespace === 'string') {
    for (const r of out) if (!CLUSTER_SCOPED.has(r.kind)) r.metadata.namespace = namespace;
  }
  for (const label of (k['labels'] as Record<string, unknown>[] | undefined) ?? []) {
    const pairs = label['pairs'] as Record<string, string>;
    const selectors = label['includeSelectors'] === true;
    const templates = selectors || label['includeTemplates'] === true;
    for (const r of out) applyLabels(r, pairs, selectors, templates);
  }
  const common = k['commonLabels'] as Record<string, string> | undefined;
  if (common) for (const r of out) applyLabels(r, common, true, true);
  return out;
}

function insideRoot(root: string, target: string, kfile: string, entry: string): void {
  const rel = relative(root, target);
  if (rel.startsWith('..') || rel.startsWith(sep) || rel === '') {
    throw new Error(`${kfile}: ${entry} is outside the kustomization root (kustomize refuses it)`);
  }
}

function applyLabels(r: Manifest, pairs: Record<string, string>, selectors: boolean, templates: boolean): void {
  r.metadata.labels = { ...(r.metadata.labels ?? {}), ...pairs };
  const spec = r['spec'] as Record<string, unknown> | undefined;
  if (!spec) return;
  if (templates && POD_TEMPLATE_KINDS.has(r.kind)) {
    const meta = ((spec['template'] as Record<string, unknown>)['metadata'] ??= {}) as Record<string, unknown>;
    meta['labels'] = { ...((meta['labels'] as Record<string, string> | undefined) ?? {}), ...pairs };
  }
  if (selectors) {
    if (POD_TEMPLATE_KINDS.has(r.kind)) {
      const sel = (spec['selector'] ??= {}) as Record<string, unknown>;
      sel['matchLabels'] = { ...((sel['matchLabels'] as Record<string, string> | undefined) ?? {}), ...pairs };
    } else if (r.kind === 'Service') {
      spec['selector'] = { ...((spec['selector'] as Record<string, string> | undefined) ?? {}), ...pairs };
    }
  }
}

