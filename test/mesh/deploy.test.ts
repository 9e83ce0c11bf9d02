import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadConfig, validate } from '../../src/config/load.js';
import { configSchema, type Config } from '../../src/config/schema/index.js';
import { BOOTSTRAP_TYPE, decodeEnvoyMessage } from './envoy-proto.js';
import {
  argValue,
  arr,
  containerPortOf,
  durationSeconds,
  effectiveSecurity,
  find,
  KNOWN_KINDS,
  mountedConfigMapFile,
  obj,
  pods,
  portOf,
  preStopSeconds,
  resolvePort,
  selects,
  type Obj,
  type Pod,
} from './k8s.js';
import { kustomizeBuild, parseManifests, type Built, type Manifest } from './kustomize.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const OVERLAYS = ['overlays/sidecar', 'overlays/istio', 'overlays/per-node', 'overlays/istio/workload'] as const;
const MESH_FILES = ['overlays/istio/mesh/istio-operator.yaml', 'overlays/istio/mesh/istiod-values.yaml'];
/** The server's own endpoints (src/transport/http-server.ts) and default ports (the schema). */
const HEALTHZ = '/healthz';
const READYZ = '/readyz';
const DEFAULTS = configSchema.parse({});
const DEFAULT_HTTP_PORT = portOf(DEFAULTS.server.http.address);
const DEFAULT_GRPC_PORT = portOf(DEFAULTS.server.grpc.address);
/** Ports an injected Istio sidecar adds to the pod (merged metrics, Envoy stats). */
const ISTIO_SIDECAR_PORTS = new Set([15020, 15090]);
/** Istio's EnvoyExternalAuthorizationGrpcProvider fields (mesh/v1alpha1/config.proto). */
const ISTIO_GRPC_PROVIDER_FIELDS = new Set(['service', 'port', 'timeout', 'failOpen', 'statusOnError', 'includeRequestBodyInCheck']);

const builds = new Map<string, Built>(OVERLAYS.map((o) => [o, kustomizeBuild(join(DEPLOY, o))]));
const built = (o: (typeof OVERLAYS)[number]): Manifest[] => builds.get(o)!.resources;
const allResources = [...builds.values()].flatMap((b) => b.resources);
const meshDocs = MESH_FILES.map((f) => YAML.parse(readFileSync(join(DEPLOY, f), 'utf8')) as Obj);

const tmp = mkdtempSync(join(tmpdir(), 'zt-authz-deploy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const isZtAuthz = (c: Obj) => /(^|\/)zt-authz(:|@|$)/.test(String(c['image']));
const isEnvoy = (c: Obj) => String(c['image']).startsWith('envoyproxy/envoy');

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => (statSync(join(dir, e)).isDirectory() ? walk(join(dir, e)) : [join(dir, e)]));
}

function configMapData(resources: Manifest[], namespace: string, name: string, key: string): string {
  const cm = find(resources, 'ConfigMap', name, namespace);
  if (!cm) throw new Error(`ConfigMap ${namespace}/${name} does not exist`);
  const value = obj(cm['data'])[key];
  if (typeof value !== 'string') throw new Error(`ConfigMap ${namespace}/${name} has no key ${key}`);
  return value;
}

/** The config the container really runs with: the mounted file plus its command-line flags. */
function effectiveConfig(resources: Manifest[], pod: Pod, container: Obj): { config: Config; text: string } {
  const path = argValue(container, '--config');
  if (!path) throw new Error(`${container['name']}: no --config`);
  const mounted = mountedConfigMapFile(pod, container, path);
  if (!mounted) throw new Error(`${container['name']}: ${path} is not a mounted ConfigMap key`);
  const text = configMapData(resources, pod.namespace, mounted.configMap, mounted.key);
  const file = join(tmp, `${pod.workload.metadata.name}-${String(container['name'])}.yaml`);
  writeFileSync(file, text);
  const loaded = loadConfig({ file, env: {}, flags: { grpc: argValue(container, '--grpc'), http: argValue(container, '--http') } });
  if (!loaded.ok) throw new Error(`${path}: ${loaded.errors.join('; ')}`);
  return { config: loaded.config, text };
}

describe('deploy/ files', () => {
  it('uses only known apiVersion/kind pairs', () => {
    const pairs = [...allResources, ...meshDocs.filter((d) => 'kind' in d)].map((r) => `${String(r['apiVersion'])}/${String(r['kind'])}`);
    expect(pairs.length).toBeGreaterThan(10);
    for (const pair of pairs) expect(KNOWN_KINDS, pair).toContain(pair);
  });

  it('has no orphan YAML: every file is a kustomization, a resource, a generator input or a mesh config', () => {
    const used = new Set([...builds.values()].flatMap((b) => [...b.files]));
    for (const f of MESH_FILES) used.add(join(DEPLOY, f));
    // deploy/monitoring is its own kustomization (Prometheus Operator kinds); its promtool unit
    // tests are read by test/mesh/monitoring.test.ts.
    for (const f of kustomizeBuild(join(DEPLOY, 'monitoring')).files) used.add(f);
    used.add(join(DEPLOY, 'monitoring/alerts-test.yaml'));
    // zt-authz example configs, each checked by check-config in test/policy/idp-examples.test.ts.
    for (const f of walk(join(DEPLOY, 'examples'))) used.add(f);
    const yamls = walk(DEPLOY).filter((f) => /\.ya?ml$/.test(f));
    for (const f of yamls) expect(used, relative(DEPLOY, f)).toContain(f);
  });

  it('parses every manifest as Kubernetes objects with DNS-1123 names', () => {
    for (const r of allResources) {
      expect(r.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      if (r.metadata.namespace) expect(r.metadata.namespace).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
  });

  it('names in the README only overlays and mesh files that exist and build', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const applied = [...readme.matchAll(/kubectl apply -k (deploy\/[\w./-]+)/g)].map((m) => m[1]!);
    const installed = [...readme.matchAll(/(?:istioctl install|helm upgrade[^\n]*?) -f (deploy\/[\w./-]+)/g)].map((m) => m[1]!);
    expect(applied).toContain('deploy/overlays/per-node');
    for (const dir of applied) expect(kustomizeBuild(join(ROOT, dir)).resources.length, dir).toBeGreaterThan(0);
    expect(installed.length).toBeGreaterThan(0);
    for (const f of installed) expect(MESH_FILES.map((m) => `deploy/${m}`), f).toContain(f);
  });

  it('keeps the sidecar overlay copy identical to envoy/sidecar.yaml', () => {
    const original = readFileSync(join(ROOT, 'envoy/sidecar.yaml'), 'utf8');
    expect(readFileSync(join(DEPLOY, 'overlays/sidecar/sidecar.yaml'), 'utf8')).toBe(original);
  });

  it('ships a policy ConfigMap that the server accepts', () => {
    const raw = YAML.parse(readFileSync(join(DEPLOY, 'base/config.yaml'), 'utf8'));
    const parsed = configSchema.safeParse(raw);
    expect(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues)).toBe(true);
    const checked = validate(raw, 'deploy/base/config.yaml');
    expect(checked.ok, checked.ok ? '' : checked.errors.join('; ')).toBe(true);
  });
});

describe.each(['overlays/sidecar', 'overlays/istio', 'overlays/per-node'] as const)('%s', (overlay) => {
  const resources = built(overlay);
  const podList = pods(resources);

  it('resolves every ConfigMap, ServiceAccount and Secret a pod references within the overlay', () => {
    expect(podList.length).toBeGreaterThan(1);
    for (const pod of podList) {
      const claims = arr(obj(pod.workload['spec'])['volumeClaimTemplates']).map((t) => obj(obj(t)['metadata'])['name']);
      const volumes = [...arr(pod.spec['volumes']).map((v) => obj(v)['name']), ...claims];
      for (const v of arr(pod.spec['volumes']).map(obj)) {
        const cm = obj(v['configMap']);
        if (cm['name'] === undefined) continue;
        for (const item of arr(cm['items']).map(obj)) {
          expect(() => configMapData(resources, pod.namespace, String(cm['name']), String(item['key']))).not.toThrow();
        }
        expect(find(resources, 'ConfigMap', String(cm['name']), pod.namespace), `${cm['name']}`).toBeDefined();
      }
      const sa = pod.spec['serviceAccountName'];
      if (sa !== undefined) expect(find(resources, 'ServiceAccount', String(sa), pod.namespace)).toBeDefined();
      for (const c of pod.containers) {
        for (const e of arr(c['env']).map(obj)) {
          const from = obj(e['valueFrom']);
          const cmRef = obj(from['configMapKeyRef']);
          if (cmRef['name'] !== undefined) expect(() => configMapData(resources, pod.namespace, String(cmRef['name']), String(cmRef['key']))).not.toThrow();
          // Secrets are created by the operator (deploy/redis/README.md); none may be required here.
          const secretRef = obj(from['secretKeyRef']);
          if (secretRef['name'] !== undefined) expect(secretRef['optional']).toBe(true);
        }
        for (const m of arr(c['volumeMounts']).map(obj)) expect(volumes).toContain(m['name']);
      }
    }
  });

  it('points every Service at pods of the overlay and at ports those pods declare', () => {
    for (const svc of resources.filter((r) => r.kind === 'Service')) {
      const spec = obj(svc['spec']);
      const targets = podList.filter((p) => p.namespace === svc.metadata.namespace && selects(spec['selector'], p.labels));
      expect(targets.length, svc.metadata.name).toBeGreaterThan(0);
      for (const port of arr(spec['ports']).map(obj)) {
        for (const pod of targets) expect(resolvePort(pod, port['targetPort'] ?? port['port']), `${svc.metadata.name}:${port['name']}`).toBeDefined();
      }
    }
  });

  it('selects existing workloads and declared ports in PodDisruptionBudgets, HPAs and NetworkPolicies', () => {
    for (const r of resources) {
      const spec = obj(r['spec']);
      if (r.kind === 'PodDisruptionBudget') {
        expect(podList.some((p) => p.namespace === r.metadata.namespace && selects(spec['selector'], p.labels))).toBe(true);
      }
      if (r.kind === 'HorizontalPodAutoscaler') {
        const ref = obj(spec['scaleTargetRef']);
        expect(find(resources, String(ref['kind']), String(ref['name']), r.metadata.namespace)).toBeDefined();
      }
      if (r.kind === 'NetworkPolicy') {
        const selected = podList.filter((p) => p.namespace === r.metadata.namespace && selects(spec['podSelector'], p.labels));
        expect(selected.length, r.metadata.name).toBeGreaterThan(0);
        for (const rule of arr(spec['ingress']).map(obj)) {
          for (const port of arr(rule['ports']).map(obj)) {
            for (const pod of selected) {
              const injected = pod.labels['sidecar.istio.io/inject'] === 'true';
              const ok = resolvePort(pod, port['port']) !== undefined || (injected && ISTIO_SIDECAR_PORTS.has(Number(port['port'])));
              expect(ok, `${r.metadata.name} port ${port['port']} on ${pod.workload.metadata.name}`).toBe(true);
            }
          }
        }
      }
    }
  });

  it('hardens every container: non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp', () => {
    for (const pod of podList) {
      expect(pod.spec['hostNetwork'] ?? false).toBe(false);
      expect(pod.spec['automountServiceAccountToken']).toBe(false);
      for (const c of pod.containers) {
        const sc = effectiveSecurity(pod, c);
        const where = `${pod.workload.metadata.name}/${String(c['name'])}`;
        expect(sc['runAsNonRoot'], where).toBe(true);
        expect(typeof sc['runAsUser'] === 'number' && sc['runAsUser'] > 0, where).toBe(true);
        expect(sc['readOnlyRootFilesystem'], where).toBe(true);
        expect(sc['allowPrivilegeEscalation'], where).toBe(false);
        expect(sc['privileged'] ?? false, where).toBe(false);
        expect(arr(obj(sc['capabilities'])['drop']), where).toContain('ALL');
        expect(arr(obj(sc['capabilities'])['add']), where).toEqual([]);
        expect(obj(sc['seccompProfile'])['type'], where).toBe('RuntimeDefault');
      }
    }
  });

  it('sets CPU and memory requests and limits on every container', () => {
    for (const pod of podList) {
      for (const c of pod.containers) {
        const res = obj(c['resources']);
        for (const kind of ['requests', 'limits']) {
          expect(obj(res[kind])['cpu'], `${String(c['name'])} ${kind}.cpu`).toBeDefined();
          expect(obj(res[kind])['memory'], `${String(c['name'])} ${kind}.memory`).toBeDefined();
        }
      }
    }
  });

  it("probes zt-authz on the server's real endpoints and port", () => {
    for (const pod of podList) {
      for (const c of pod.containers.filter(isZtAuthz)) {
        const { config } = effectiveConfig(resources, pod, c);
        const httpPort = portOf(config.server.http.address);
        expect(httpPort).toBe(DEFAULT_HTTP_PORT);
        // Probes come from the kubelet, not from loopback.
        expect(config.server.http.address.startsWith('127.')).toBe(false);
        const ready = obj(obj(c['readinessProbe'])['httpGet']);
        const live = obj(obj(c['livenessProbe'])['httpGet']);
        expect(ready['path']).toBe(READYZ);
        expect(live['path']).toBe(HEALTHZ);
        expect(containerPortOf(c, ready['port'])).toBe(httpPort);
        expect(containerPortOf(c, live['port'])).toBe(httpPort);
        const startup = obj(obj(c['startupProbe'])['httpGet']);
        if (startup['path'] !== undefined) {
          expect(startup['path']).toBe(HEALTHZ);
          expect(containerPortOf(c, startup['port'])).toBe(httpPort);
        }
        expect(portOf(config.server.grpc.address)).toBe(DEFAULT_GRPC_PORT);
      }
    }
  });

  it('gives zt-authz a preStop hook and a grace period longer than preStop plus the drain', () => {
    for (const pod of podList) {
      const authz = pod.containers.filter(isZtAuthz);
      if (authz.length === 0) continue;
      const grace = Number(pod.spec['terminationGracePeriodSeconds']);
      for (const c of authz) {
        const { config } = effectiveConfig(resources, pod, c);
        const preStop = preStopSeconds(c);
        expect(preStop, 'zt-authz preStop').toBeGreaterThan(0);
        expect(grace).toBeGreaterThan((preStop ?? 0) + config.server.shutdown_grace_ms / 1000);
        // zt-authz must outlive the proxy that still sends it checks.
        for (const proxy of pod.containers.filter(isEnvoy)) {
          const proxyPreStop = preStopSeconds(proxy);
          expect(proxyPreStop, 'envoy preStop').toBeGreaterThan(0);
          expect(preStop).toBeGreaterThanOrEqual(proxyPreStop ?? Infinity);
        }
      }
    }
  });

  it('points zt-authz at a Redis Service of the overlay', () => {
    for (const pod of podList) {
      for (const c of pod.containers.filter(isZtAuthz)) {
        const { config } = effectiveConfig(resources, pod, c);
        if (config.state.backend !== 'redis' || !config.state.redis.url) continue;
        const url = new URL(config.state.redis.url);
        const host = url.hostname.split('.');
        const namespace = host[1] ?? pod.namespace;
        const svc = find(resources, 'Service', host[0] ?? '', namespace);
        expect(svc, url.hostname).toBeDefined();
        expect(arr(obj(svc?.['spec'])['ports']).map((p) => obj(p)['port'])).toContain(Number(url.port || 6379));
        expect(pod.labels['zt-authz.io/redis-client'], 'admitted by the Redis NetworkPolicy').toBe('true');
      }
    }
  });

  it("starts this Node with zt-authz's NODE_OPTIONS (an option Node refuses there stops every pod)", () => {
    for (const pod of podList) {
      for (const c of pod.containers.filter(isZtAuthz)) {
        const nodeOptions = arr(c['env']).map(obj).find((e) => e['name'] === 'NODE_OPTIONS')?.['value'];
        if (typeof nodeOptions !== 'string') continue;
        const r = spawnSync(process.execPath, ['-e', 'process.stdout.write("started")'], { env: { ...process.env, NODE_OPTIONS: nodeOptions }, encoding: 'utf8' });
        expect(r.stderr, nodeOptions).toBe('');
        expect(r.stdout, nodeOptions).toBe('started');
      }
    }
  });
});

describe('overlays/sidecar', () => {
  const resources = built('overlays/sidecar');
  const pod = pods(resources).find((p) => p.containers.some(isEnvoy))!;
  const container = (pred: (c: Obj) => boolean) => pod.containers.find(pred)!;

  it('runs app, Envoy and zt-authz in one pod', () => {
    expect(pod).toBeDefined();
    expect(pod.containers.map((c) => c['name'])).toEqual(expect.arrayContaining(['app', 'envoy', 'zt-authz']));
  });

  it('mounts the Envoy bootstrap the container is started with, and it decodes as a Bootstrap', () => {
    const envoy = container(isEnvoy);
    const path = argValue(envoy, '-c');
    expect(path).toBeDefined();
    const mounted = mountedConfigMapFile(pod, envoy, path!);
    expect(mounted).toBeDefined();
    const text = configMapData(resources, pod.namespace, mounted!.configMap, mounted!.key);
    expect(text).toBe(readFileSync(join(ROOT, 'envoy/sidecar.yaml'), 'utf8'));
    expect(() => decodeEnvoyMessage(BOOTSTRAP_TYPE, YAML.parse(text))).not.toThrow();
  });

  it('wires the ports together: Service -> Envoy listener, Envoy -> app and zt-authz on loopback', () => {
    const envoy = container(isEnvoy);
    const authz = container(isZtAuthz);
    const app = container((c) => c['name'] === 'app');
    const bootstrap = YAML.parse(readFileSync(join(ROOT, 'envoy/sidecar.yaml'), 'utf8')) as Obj;
    const sr = obj(bootstrap['static_resources']);
    const listenerPort = obj(obj(obj(arr(sr['listeners'])[0])['address'])['socket_address'])['port_value'];
    expect(arr(envoy['ports']).map((p) => obj(p)['containerPort'])).toContain(listenerPort);
    const endpoint = (name: string) => {
      const c = arr(sr['clusters']).map(obj).find((x) => x['name'] === name);
      const sa = obj(obj(obj(arr(obj(arr(obj(c?.['load_assignment'])['endpoints'])[0])['lb_endpoints'])[0])['endpoint'])['address']);
      const s = obj(sa['socket_address']);
      return `${String(s['address'])}:${String(s['port_value'])}`;
    };
    const { config } = effectiveConfig(resources, pod, authz);
    expect(endpoint('zt_authz')).toBe(config.server.grpc.address);
    // Decisions are served on loopback only in the sidecar shape.
    expect(config.server.grpc.address.startsWith('127.0.0.1:')).toBe(true);
    expect(arr(app['args'])).toContain(`-listen=${endpoint('local_app')}`);
    const svc = find(resources, 'Service', 'orders', pod.namespace)!;
    for (const port of arr(obj(svc['spec'])['ports']).map(obj)) {
      expect(resolvePort(pod, port['targetPort'])).toBe(listenerPort);
    }
  });

  it('probes Envoy through the /healthz route that skips ext_authz', () => {
    const envoy = container(isEnvoy);
    expect(obj(obj(envoy['readinessProbe'])['httpGet'])['path']).toBe(HEALTHZ);
    expect(envoy['livenessProbe']).toBeDefined();
  });
});

describe('overlays/istio', () => {
  const resources = built('overlays/istio');
  const workload = built('overlays/istio/workload');
  const deployment = find(resources, 'Deployment', 'zt-authz', 'zt-authz')!;
  const providers = meshDocs.map((doc) => {
    const mesh = obj(doc['kind'] === 'IstioOperator' ? obj(doc['spec'])['meshConfig'] : doc['meshConfig']);
    return arr(mesh['extensionProviders']).map(obj);
  });

  it('runs at least two replicas with a PodDisruptionBudget and an HPA', () => {
    expect(Number(obj(deployment['spec'])['replicas'])).toBeGreaterThanOrEqual(2);
    const labels = obj(obj(obj(obj(deployment['spec'])['template'])['metadata'])['labels']) as Record<string, string>;
    const pdb = resources.find((r) => r.kind === 'PodDisruptionBudget' && selects(obj(r['spec'])['selector'], labels));
    expect(pdb).toBeDefined();
    const pdbSpec = obj(pdb?.['spec']);
    expect(pdbSpec['minAvailable'] ?? pdbSpec['maxUnavailable']).toBeDefined();
    const hpa = resources.find((r) => r.kind === 'HorizontalPodAutoscaler' && obj(obj(r['spec'])['scaleTargetRef'])['name'] === 'zt-authz');
    expect(Number(obj(hpa?.['spec'])['minReplicas'])).toBeGreaterThanOrEqual(2);
    expect(Number(obj(hpa?.['spec'])['maxReplicas'])).toBeGreaterThan(Number(obj(hpa?.['spec'])['minReplicas']));
  });

  it('registers a fail-closed envoyExtAuthzGrpc provider with a short timeout, identically in both install forms', () => {
    expect(providers.length).toBe(MESH_FILES.length);
    expect(providers[0]).toEqual(providers[1]);
    const grpc = providers[0]!.map((p) => obj(p['envoyExtAuthzGrpc'])).filter((g) => Object.keys(g).length > 0);
    expect(grpc.length).toBeGreaterThan(0);
    for (const g of grpc) {
      for (const key of Object.keys(g)) expect(ISTIO_GRPC_PROVIDER_FIELDS, key).toContain(key);
      expect(g['failOpen']).toBe(false);
      const timeout = durationSeconds(g['timeout']);
      expect(timeout).toBeGreaterThan(DEFAULTS.server.decision_timeout_ms / 1000);
      expect(timeout).toBeLessThanOrEqual(0.25);
      expect(g['statusOnError']).toBe('503');
      expect(g['port']).toBe(DEFAULT_GRPC_PORT);
      // service.namespace.svc.cluster.local must be a Service of this overlay with that port.
      const [name, namespace] = String(g['service']).split('.');
      const svc = find([...resources, ...built('overlays/per-node')], 'Service', name ?? '', namespace);
      expect(svc, String(g['service'])).toBeDefined();
      expect(arr(obj(svc?.['spec'])['ports']).map((p) => obj(p)['port'])).toContain(g['port']);
    }
  });

  it('has AuthorizationPolicy CUSTOM naming a provider the mesh config defines', () => {
    const names = new Set(providers[0]!.map((p) => p['name']));
    const policies = workload.filter((r) => r.kind === 'AuthorizationPolicy');
    expect(policies.length).toBeGreaterThan(0);
    for (const p of policies) {
      const spec = obj(p['spec']);
      expect(spec['action']).toBe('CUSTOM');
      expect(names).toContain(obj(spec['provider'])['name']);
      // The exemption, if any, is an exact path (never a prefix like "/healthz*").
      for (const rule of arr(spec['rules']).map(obj)) {
        for (const to of arr(rule['to']).map(obj)) {
          for (const path of arr(obj(to['operation'])['notPaths'])) expect(String(path)).not.toMatch(/\*/);
        }
      }
    }
  });

  it('requires mTLS (PeerAuthentication STRICT) for zt-authz and for the protected workloads', () => {
    const strictIn = (rs: Manifest[]) =>
      new Set(rs.filter((r) => r.kind === 'PeerAuthentication' && obj(obj(r['spec'])['mtls'])['mode'] === 'STRICT').map((r) => r.metadata.namespace));
    expect(strictIn(resources)).toContain('zt-authz');
    for (const p of workload.filter((r) => r.kind === 'AuthorizationPolicy')) expect(strictIn(workload)).toContain(p.metadata.namespace);
  });

  it('lets only the mesh reach the decision ports', () => {
    const nps = resources.filter((r) => r.kind === 'NetworkPolicy');
    const defaultDeny = nps.find((r) => {
      const spec = obj(r['spec']);
      return Object.keys(obj(spec['podSelector'])).length === 0 && arr(spec['policyTypes']).includes('Ingress') && spec['ingress'] === undefined;
    });
    expect(defaultDeny).toBeDefined();
    const labels = obj(obj(obj(obj(deployment['spec'])['template'])['metadata'])['labels']) as Record<string, string>;
    let admitting = 0;
    for (const np of nps.filter((r) => selects(obj(r['spec'])['podSelector'], labels))) {
      for (const rule of arr(obj(np['spec'])['ingress']).map(obj)) {
        const ports = arr(rule['ports']).map((p) => Number(obj(p)['port']));
        // A rule without ports opens every port; one without `from` opens it to everyone.
        if (ports.length === 0) throw new Error(`${np.metadata.name}: an ingress rule without ports`);
        if (!ports.includes(DEFAULT_GRPC_PORT) && !ports.includes(DEFAULT_HTTP_PORT)) continue;
        admitting++;
        const peers = arr(rule['from']).map(obj);
        expect(peers.length, `${np.metadata.name}: open to all`).toBeGreaterThan(0);
        for (const peer of peers) {
          expect(peer['ipBlock'], 'no ipBlock peers').toBeUndefined();
          const ns = obj(peer['namespaceSelector']);
          expect(Object.keys(ns).length, 'namespaceSelector must name mesh namespaces').toBeGreaterThan(0);
          const meshish = JSON.stringify(ns);
          expect(meshish).toMatch(/istio-injection|istio\.io\/rev|istio-system/);
        }
      }
    }
    expect(admitting).toBeGreaterThan(0);
  });

  it('labels the namespace for sidecar injection and injects the zt-authz pods', () => {
    const ns = find(resources, 'Namespace', 'zt-authz')!;
    expect(ns.metadata.labels?.['istio-injection']).toBe('enabled');
    const labels = obj(obj(obj(obj(deployment['spec'])['template'])['metadata'])['labels']);
    expect(labels['sidecar.istio.io/inject']).toBe('true');
  });

  it('serves the headless Service that envoy/front-proxy.yaml resolves', () => {
    const bootstrap = YAML.parse(readFileSync(join(ROOT, 'envoy/front-proxy.yaml'), 'utf8')) as Obj;
    const c = arr(obj(bootstrap['static_resources'])['clusters']).map(obj).find((x) => x['name'] === 'zt_authz');
    const sa = obj(obj(obj(obj(arr(obj(arr(obj(c?.['load_assignment'])['endpoints'])[0])['lb_endpoints'])[0])['endpoint'])['address'])['socket_address']);
    const [name, namespace] = String(sa['address']).split('.');
    const svc = find(resources, 'Service', name ?? '', namespace);
    expect(svc, String(sa['address'])).toBeDefined();
    expect(obj(svc?.['spec'])['clusterIP']).toBe('None');
    expect(arr(obj(svc?.['spec'])['ports']).map((p) => obj(p)['port'])).toContain(sa['port_value']);
  });
});

describe('overlays/per-node', () => {
  const resources = built('overlays/per-node');
  const ds = find(resources, 'DaemonSet', 'zt-authz-node', 'zt-authz')!;
  const podLabels = obj(obj(obj(obj(ds['spec'])['template'])['metadata'])['labels']) as Record<string, string>;
  const svc = find(resources, 'Service', 'zt-authz-node', 'zt-authz')!;

  it('runs one authorizer per node that a rollout replaces before it stops the old one', () => {
    expect(ds).toBeDefined();
    const rolling = obj(obj(obj(ds['spec'])['updateStrategy'])['rollingUpdate']);
    expect(obj(obj(ds['spec'])['updateStrategy'])['type']).toBe('RollingUpdate');
    expect(rolling['maxUnavailable']).toBe(0);
    expect(Number(rolling['maxSurge'])).toBeGreaterThanOrEqual(1);
    expect(resources.filter((r) => r.kind === 'Deployment')).toEqual([]);
  });

  it('sends each caller only to the authorizer on its own node', () => {
    expect(obj(svc['spec'])['internalTrafficPolicy']).toBe('Local');
    expect(selects({ matchLabels: obj(svc['spec'])['selector'] }, podLabels)).toBe(true);
    const grpc = arr(obj(svc['spec'])['ports']).map(obj).find((p) => p['port'] === DEFAULT_GRPC_PORT);
    expect(grpc?.['appProtocol']).toBe('grpc');
  });

  it('is covered by the shared mTLS and NetworkPolicies of the Istio shape', () => {
    expect(resources.find((r) => r.kind === 'PeerAuthentication' && obj(obj(r['spec'])['mtls'])['mode'] === 'STRICT')).toBeDefined();
    const admitting = resources.filter((r) => r.kind === 'NetworkPolicy' && r.metadata.name === 'zt-authz-from-mesh' && selects(obj(r['spec'])['podSelector'], podLabels));
    expect(admitting.length).toBe(1);
    expect(podLabels['sidecar.istio.io/inject']).toBe('true');
  });

  it('is registered in the mesh config as a fail-closed provider', () => {
    for (const doc of meshDocs) {
      const mesh = obj(doc['kind'] === 'IstioOperator' ? obj(doc['spec'])['meshConfig'] : doc['meshConfig']);
      const p = arr(mesh['extensionProviders']).map(obj).find((x) => x['name'] === 'zt-authz-node');
      const g = obj(p?.['envoyExtAuthzGrpc']);
      expect(g['service']).toBe('zt-authz-node.zt-authz.svc.cluster.local');
      expect(g['failOpen']).toBe(false);
    }
  });
});

describe('deploy/redis', () => {
  it('ships a dev StatefulSet and Service, included by every overlay', () => {
    for (const o of ['overlays/sidecar', 'overlays/istio', 'overlays/per-node'] as const) {
      const rs = built(o);
      expect(rs.find((r) => r.kind === 'StatefulSet' && r.metadata.name === 'zt-authz-redis')).toBeDefined();
      expect(rs.find((r) => r.kind === 'Service' && r.metadata.name === 'zt-authz-redis')).toBeDefined();
    }
    const sts = parseManifests(join(DEPLOY, 'redis/statefulset.yaml'))[0]!;
    const args = arr(obj(arr(obj(obj(obj(sts['spec'])['template'])['spec'])['containers'])[0])['args']).map(String);
    // Never evict a suspension to make room.
    expect(args[args.indexOf('--maxmemory-policy') + 1]).toBe('noeviction');
  });

  it('documents managed Redis, Sentinel and Cluster with config blocks the server accepts', () => {
    const readme = readFileSync(join(DEPLOY, 'redis/README.md'), 'utf8');
    expect(readme).toMatch(/ZT_AUTHZ_REDIS/);
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => YAML.parse(m[1] ?? '') as Obj);
    const configs = blocks.filter((b) => 'state' in b);
    const kinds = new Set<string>();
    for (const block of configs) {
      const parsed = configSchema.safeParse(block);
      expect(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues)).toBe(true);
      const redis = obj(obj(block['state'])['redis']);
      for (const k of ['url', 'sentinel', 'cluster']) if (k in redis) kinds.add(k);
    }
    expect([...kinds].sort()).toEqual(['cluster', 'sentinel', 'url']);
  });
});

describe('deploy/Dockerfile', () => {
  const text = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const stages: string[][] = [];
  for (const line of lines) {
    if (/^FROM\s/i.test(line)) stages.push([]);
    stages.at(-1)?.push(line);
  }
  const runtime = stages.at(-1) ?? [];
  const builders = stages.slice(0, -1);
  const instr = (stage: string[], name: string) => stage.filter((l) => l.toUpperCase().startsWith(name + ' '));
  const image = (stage: string[]) => stage[0]!.split(/\s+/)[1]!;
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
    engines: { node: string };
    dependencies: Record<string, string>;
  };
  /** The Node versions .ci/run tests, newest first. */
  const ciNodes = /NODE_VERSIONS=\(([^)]*)\)/.exec(readFileSync(join(ROOT, '.ci/run'), 'utf8'))?.[1]?.trim().split(/\s+/) ?? [];
  const DEBIAN_RELEASES: Record<string, string> = { bookworm: '12', trixie: '13' };

  it('builds on the official Node image at the exact version CI tests first, an LTS line engines allows', () => {
    expect(builders.length).toBeGreaterThanOrEqual(2);
    const tested = ciNodes[0] ?? '';
    expect(tested).toMatch(/^\d+\.\d+\.\d+$/);
    for (const s of builders) {
      const m = /^node:(\d+\.\d+\.\d+)-(\w+)-slim(@sha256:[0-9a-f]{64})?$/.exec(image(s));
      expect(m, image(s)).not.toBeNull();
      expect(m![1]).toBe(tested);
      expect(DEBIAN_RELEASES[m![2]!], m![2]).toBeDefined();
    }
    const major = tested.split('.')[0]!;
    expect(Number(major) % 2, 'an even (LTS) line').toBe(0);
    expect(pkg.engines.node.split('||').map((r) => r.trim().replace(/^\^/, '').split('.')[0])).toContain(major);
  });

  it('runs on distroless Node of the same major and Debian release, as its nonroot user, with no shell or npm', () => {
    const build = /^node:(\d+)\.\d+\.\d+-(\w+)-slim/.exec(image(builders[0]!))!;
    const m = /^gcr\.io\/distroless\/nodejs(\d+)-debian(\d+):(nonroot)(@sha256:[0-9a-f]{64})?$/.exec(image(runtime));
    expect(m, image(runtime)).not.toBeNull();
    expect(m![1]).toBe(build[1]);
    expect(m![2]).toBe(DEBIAN_RELEASES[build[2]!]);
    // distroless has no /bin/sh: any RUN in the runtime stage would fail, and nothing there installs packages.
    expect(instr(runtime, 'RUN')).toEqual([]);
    expect(runtime.join('\n')).not.toMatch(/\bnpm\b|apt-get|\bapk\b/);
    const user = instr(runtime, 'USER').at(-1)?.split(/\s+/)[1] ?? '';
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(user).toBe('65532:65532');
  });

  it('installs production dependencies in a build stage and copies them, the build output and the protos into the runtime', () => {
    const runs = builders.map((s) => instr(s, 'RUN').join('\n'));
    expect(runs.some((r) => /npm ci\b/.test(r) && /npm run build|tsc/.test(r))).toBe(true);
    const depsStage = builders.find((s) => /npm ci\b[^\n]*--omit=dev/.test(instr(s, 'RUN').join('\n')));
    expect(depsStage).toBeDefined();
    const depsName = /\bAS\s+(\S+)/i.exec(depsStage![0]!)?.[1];
    const copies = instr(runtime, 'COPY').join('\n');
    expect(copies).toContain(`--from=${depsName} /app/node_modules`);
    expect(copies).toMatch(/--from=\S+ \/app\/dist\/src/);
    expect(copies).toMatch(/\bproto\b/);
    expect(copies).toMatch(/\bpackage\.json\b/);
  });

  it('copies only paths that exist in the repository and that the build context (.dockerignore) keeps', () => {
    const ignore = readFileSync(join(DEPLOY, 'Dockerfile.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const ignored = (path: string) =>
      ignore.some((pat) => {
        const p = pat.replace(/^\*\*\//, '');
        return path === p || path.startsWith(p + '/') || (pat.startsWith('**/') && path.split('/').includes(p));
      });
    let checked = 0;
    for (const stage of stages) {
      for (const copy of instr(stage, 'COPY').filter((l) => !l.includes('--from'))) {
        const parts = copy.split(/\s+/).slice(1);
        for (const src of parts.slice(0, -1)) {
          expect(() => statSync(join(ROOT, src)), src).not.toThrow();
          expect(ignored(src), `${src} is excluded from the build context`).toBe(false);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(5);
    // What must stay out of the image: local installs, build output, history, tests.
    for (const p of ['node_modules', 'dist', '.git', 'test']) expect(ignored(p), p).toBe(true);
  });

  it('starts the built package binary with serve in exec form, on the default ports, with no HEALTHCHECK', () => {
    expect(instr(runtime, 'HEALTHCHECK')).toEqual([]);
    const entry = JSON.parse(instr(runtime, 'ENTRYPOINT')[0]!.replace(/^ENTRYPOINT\s+/i, '')) as string[];
    expect(entry).toEqual(['/nodejs/bin/node', pkg.bin['zt-authz'], 'serve']);
    // The test command builds first (npm test runs `npm run build`): the entry point is there.
    expect(statSync(join(ROOT, pkg.bin['zt-authz']!)).isFile()).toBe(true);
    const cmd = JSON.parse(instr(runtime, 'CMD')[0]!.replace(/^CMD\s+/i, '')) as string[];
    expect(portOf(cmd[cmd.indexOf('--http') + 1] ?? '')).toBe(DEFAULT_HTTP_PORT);
    expect(portOf(cmd[cmd.indexOf('--grpc') + 1] ?? '')).toBe(DEFAULT_GRPC_PORT);
    const exposed = instr(runtime, 'EXPOSE').flatMap((l) => l.split(/\s+/).slice(1)).map(Number);
    expect(exposed).toEqual(expect.arrayContaining([DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT]));
  });

  it('needs only production dependencies at run time: every package the build output imports is in dependencies', () => {
    const files = walk(join(ROOT, 'dist/src')).filter((f) => f.endsWith('.js'));
    expect(files.length).toBeGreaterThan(20);
    const imported = new Set<string>();
    for (const f of files) {
      for (const m of readFileSync(f, 'utf8').matchAll(/(?:from\s+|import\s*\(\s*)['"]([^'"./][^'"]*)['"]/g)) {
        const spec = m[1]!;
        if (spec.startsWith('node:')) continue;
        imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    expect(imported.size).toBeGreaterThan(3);
    for (const name of imported) expect(Object.keys(pkg.dependencies), name).toContain(name);
  });
});
