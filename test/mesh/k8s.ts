import type { Manifest } from './kustomize.js';

/** Small readers over Kubernetes manifests for the deploy tests. */

export type Obj = Record<string, unknown>;
export const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
export const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** apiVersion/kind pairs the manifests may use (GA APIs and Istio's v1 security API). */
export const KNOWN_KINDS = new Set([
  'v1/ConfigMap',
  'v1/Namespace',
  'v1/Service',
  'v1/ServiceAccount',
  'apps/v1/Deployment',
  'apps/v1/StatefulSet',
  'apps/v1/DaemonSet',
  'policy/v1/PodDisruptionBudget',
  'autoscaling/v2/HorizontalPodAutoscaler',
  'networking.k8s.io/v1/NetworkPolicy',
  'security.istio.io/v1/AuthorizationPolicy',
  'security.istio.io/v1/PeerAuthentication',
  'install.istio.io/v1alpha1/IstioOperator',
]);

export interface Pod {
  readonly workload: Manifest;
  readonly namespace: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly spec: Obj;
  readonly containers: Obj[];
}

export function pods(resources: Manifest[]): Pod[] {
  return resources
    .filter((r) => r.kind === 'Deployment' || r.kind === 'StatefulSet' || r.kind === 'DaemonSet')
    .map((workload) => {
      const template = obj(obj(workload['spec'])['template']);
      const meta = obj(template['metadata']);
      const spec = obj(template['spec']);
      return {
        workload,
        namespace: workload.metadata.namespace ?? 'default',
        labels: obj(meta['labels']) as Record<string, string>,
        annotations: obj(meta['annotations']) as Record<string, string>,
        spec,
        containers: [...arr(spec['initContainers']), ...arr(spec['containers'])].map(obj),
      };
    });
}

export function find(resources: Manifest[], kind: string, name: string, namespace?: string): Manifest | undefined {
  return resources.find((r) => r.kind === kind && r.metadata.name === name && (namespace === undefined || (r.metadata.namespace ?? 'default') === namespace));
}

/** matchLabels + matchExpressions (In, NotIn, Exists, DoesNotExist), or a bare map (Service). */
export function selects(selector: unknown, labels: Record<string, string>): boolean {
  const s = obj(selector);
  const isLabelSelector = 'matchLabels' in s || 'matchExpressions' in s;
  const matchLabels = (isLabelSelector ? obj(s['matchLabels']) : s) as Record<string, string>;
  for (const [k, v] of Object.entries(matchLabels)) if (labels[k] !== v) return false;
  for (const e of arr(s['matchExpressions']).map(obj)) {
    const key = String(e['key']);
    const values = arr(e['values']).map(String);
    const has = key in labels;
    const ok =
      e['operator'] === 'In' ? has && values.includes(labels[key] as string)
      : e['operator'] === 'NotIn' ? !has || !values.includes(labels[key] as string)
      : e['operator'] === 'Exists' ? has
      : e['operator'] === 'DoesNotExist' ? !has
      : false;
    if (!ok) return false;
  }
  return true;
}

/** A container port given by number or name. */
export function resolvePort(pod: Pod, port: unknown): number | undefined {
  for (const c of pod.containers) {
    for (const p of arr(c['ports']).map(obj)) {
      if (p['containerPort'] === port || (typeof port === 'string' && p['name'] === port)) return Number(p['containerPort']);
    }
  }
  return undefined;
}

export function containerPortOf(container: Obj, port: unknown): number | undefined {
  if (typeof port === 'number') return port;
  const found = arr(container['ports']).map(obj).find((p) => p['name'] === port);
  return found ? Number(found['containerPort']) : undefined;
}

export function argValue(container: Obj, flag: string): string | undefined {
  const args = [...arr(container['command']), ...arr(container['args'])].map(String);
  const i = args.indexOf(flag);
  if (i >= 0) return args[i + 1];
  const inline = args.find((a) => a.startsWith(`${flag}=`));
  return inline?.slice(flag.length + 1);
}

export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** Container securityContext over the pod's, as the kubelet resolves the shared fields. */
export function effectiveSecurity(pod: Pod, container: Obj): Obj {
  const podSc = obj(pod.spec['securityContext']);
  const sc = obj(container['securityContext']);
  const pick = (k: string) => (sc[k] !== undefined ? sc[k] : podSc[k]);
  return {
    runAsNonRoot: pick('runAsNonRoot'),
    runAsUser: pick('runAsUser'),
    seccompProfile: pick('seccompProfile'),
    readOnlyRootFilesystem: sc['readOnlyRootFilesystem'],
    allowPrivilegeEscalation: sc['allowPrivilegeEscalation'],
    privileged: sc['privileged'],
    capabilities: sc['capabilities'],
  };
}

/** Seconds a preStop hook keeps the container alive (native sleep action or `sleep N`). */
export function preStopSeconds(container: Obj): number | undefined {
  const pre = obj(obj(container['lifecycle'])['preStop']);
  if (pre['sleep'] !== undefined) return Number(obj(pre['sleep'])['seconds']);
  const cmd = arr(obj(pre['exec'])['command']).map(String);
  const joined = cmd.join(' ');
  const m = /(?:^|\s|\/)sleep\s+(\d+)/.exec(joined);
  return m ? Number(m[1]) : undefined;
}

export function mountedConfigMapFile(pod: Pod, container: Obj, path: string): { configMap: string; key: string } | undefined {
  for (const m of arr(container['volumeMounts']).map(obj)) {
    const mountPath = String(m['mountPath']).replace(/\/$/, '');
    if (!path.startsWith(mountPath + '/')) continue;
    const rel = path.slice(mountPath.length + 1);
    const volume = arr(pod.spec['volumes']).map(obj).find((v) => v['name'] === m['name']);
    const cm = obj(volume?.['configMap']);
    if (typeof cm['name'] !== 'string') return undefined;
    const items = arr(cm['items']).map(obj);
    const key = items.length === 0 ? rel : (items.find((i) => i['path'] === rel)?.['key'] as string | undefined);
    return key === undefined ? undefined : { configMap: cm['name'], key };
  }
  return undefined;
}

/** "0.2s", "200ms", "1m" -> seconds (Istio and Go durations). */
export function durationSeconds(value: unknown): number {
  const m = typeof value === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value) : null;
  if (!m) return NaN;
  const scale = { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * scale;
}
