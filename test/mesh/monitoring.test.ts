import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { arr, containerPortOf, obj, pods, selects, type Obj } from './k8s.js';
import { kustomizeBuild, type Manifest } from './kustomize.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MONITORING = join(ROOT, 'deploy/monitoring');
const tmp = mkdtempSync(join(tmpdir(), 'zt-authz-monitoring-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const built = kustomizeBuild(MONITORING).resources;
const rule = built.find((r) => r.kind === 'PrometheusRule')!;
const groups = arr(obj(rule['spec'])['groups']).map(obj);
const rules = groups.flatMap((g) => arr(g['rules']).map(obj));
const alerts = rules.filter((r) => 'alert' in r);
const dashboard = JSON.parse(readFileSync(join(MONITORING, 'zt-authz-dashboard.json'), 'utf8')) as { panels: Obj[]; templating: { list: Obj[] } };
const dashboardExprs = [
  ...dashboard.panels.flatMap((p) => arr(p['targets']).map((t) => String(obj(t)['expr']))),
  ...dashboard.templating.list.map((v) => obj(v['query'])['query']).filter((q): q is string => typeof q === 'string'),
];

/** Grafana's variables, replaced by what Grafana would send, so promtool can parse the queries. */
const grafanaToPromql = (expr: string) =>
  expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$namespace', '.*')
    .replaceAll('$pod', '.*')
    .replace(/^label_values\((.*), \w+\)$/, '$1');

function promtool(...args: string[]) {
  const r = spawnSync('promtool', args, { encoding: 'utf8', cwd: tmp, timeout: 120_000 });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** The PrometheusRule's spec is a plain Prometheus rule file. */
const rulesFile = join(tmp, 'rules.yaml');
writeFileSync(rulesFile, YAML.stringify(rule['spec']));

describe('deploy/monitoring', () => {
  it('builds with kustomize into scrape configs, one PrometheusRule and a labelled dashboard ConfigMap', () => {
    expect(built.map((r) => `${r.apiVersion}/${r.kind}`).sort()).toEqual([
      'monitoring.coreos.com/v1/PodMonitor',
      'monitoring.coreos.com/v1/PrometheusRule',
      'monitoring.coreos.com/v1/ServiceMonitor',
      'v1/ConfigMap',
    ]);
    const k = YAML.parse(readFileSync(join(MONITORING, 'kustomization.yaml'), 'utf8')) as Obj;
    const gen = arr(k['configMapGenerator']).map(obj)[0]!;
    expect(obj(obj(gen['options'])['labels'])['grafana_dashboard']).toBe('1');
    const cm = built.find((r) => r.kind === 'ConfigMap')!;
    expect(JSON.parse(String(obj(cm['data'])['zt-authz-dashboard.json'])).uid).toBe('zt-authz');
  });

  it('scrapes /metrics on the zt-authz container of the sidecar pods and of the shared deployment', () => {
    const sidecar = kustomizeBuild(join(ROOT, 'deploy/overlays/sidecar')).resources;
    const shared = kustomizeBuild(join(ROOT, 'deploy/overlays/istio')).resources;
    const podMonitor = obj(built.find((r) => r.kind === 'PodMonitor')!['spec']);
    const endpoint = obj(arr(podMonitor['podMetricsEndpoints'])[0]);
    expect(endpoint['path']).toBe('/metrics');
    const scraped = pods(sidecar).filter((p) => selects(podMonitor['selector'], p.labels));
    expect(scraped.length).toBeGreaterThan(0);
    for (const p of scraped) {
      const zt = p.containers.find((c) => String(c['image']).startsWith('zt-authz'))!;
      expect(containerPortOf(zt, String(endpoint['port'])), `${p.workload.metadata.name} port ${endpoint['port']}`).toBe(8181);
    }
    // Nothing else is selected: Envoy's and the app's ports are not scraped as zt-authz.
    expect(pods(shared).filter((p) => selects(podMonitor['selector'], p.labels))).toEqual([]);

    const serviceMonitor = obj(built.find((r) => r.kind === 'ServiceMonitor')!['spec']);
    const smEndpoint = obj(arr(serviceMonitor['endpoints'])[0]);
    expect(smEndpoint['path']).toBe('/metrics');
    const namespaces = arr(obj(serviceMonitor['namespaceSelector'])['matchNames']);
    const services = shared.filter((r: Manifest) => r.kind === 'Service' && namespaces.includes(r.metadata.namespace) && selects(serviceMonitor['selector'], r.metadata.labels ?? {}));
    const withPort = services.filter((s) => arr(obj(s['spec'])['ports']).some((p) => obj(p)['name'] === smEndpoint['port']));
    expect(withPort.length).toBe(1);
    const port = arr(obj(withPort[0]!['spec'])['ports']).map(obj).find((p) => p['name'] === smEndpoint['port'])!;
    const target = pods(shared).find((p) => selects(obj(withPort[0]!['spec'])['selector'], p.labels))!;
    const zt = target.containers.find((c) => String(c['image']).startsWith('zt-authz'))!;
    expect(containerPortOf(zt, String(port['targetPort']))).toBe(8181);
  });

  it('passes promtool check rules', () => {
    const r = promtool('check', 'rules', rulesFile);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(new RegExp(`SUCCESS: ${rules.length} rules found`));
  });

  it('passes promtool test rules, with a firing and a quiet case for every alert', () => {
    const testFile = join(tmp, 'alerts-test.yaml');
    copyFileSync(join(MONITORING, 'alerts-test.yaml'), testFile);
    const tests = arr((YAML.parse(readFileSync(testFile, 'utf8')) as Obj)['tests']).map(obj);
    const cases = tests.flatMap((t) => arr(t['alert_rule_test']).map(obj));
    expect(alerts.length).toBeGreaterThanOrEqual(10);
    for (const a of alerts) {
      const mine = cases.filter((c) => c['alertname'] === a['alert']);
      expect(mine.some((c) => arr(c['exp_alerts']).length > 0), `${a['alert']} fires in some test`).toBe(true);
      expect(mine.some((c) => arr(c['exp_alerts']).length === 0), `${a['alert']} stays quiet in some test`).toBe(true);
    }
    const r = promtool('test', 'rules', testFile);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS');
  });

  it('has dashboard queries that are valid PromQL', () => {
    expect(dashboard.panels.filter((p) => p['type'] !== 'row').every((p) => arr(p['targets']).length > 0)).toBe(true);
    const file = join(tmp, 'dashboard-queries.yaml');
    writeFileSync(file, YAML.stringify({ groups: [{ name: 'dashboard', rules: dashboardExprs.map((e, i) => ({ record: `dashboard:q${i}`, expr: grafanaToPromql(e) })) }] }));
    const r = promtool('check', 'rules', file);
    expect(r.code, r.out).toBe(0);
  });
});

describe('metrics the rules and the dashboard query', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer();
  });
  afterAll(async () => {
    await srv.stop();
  });

  it('all exist on a running server’s /metrics', async () => {
    const text = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    const exposed = new Set<string>();
    for (const m of text.matchAll(/^# TYPE (\S+) (\w+)$/gm)) {
      const [name, type] = [m[1]!, m[2]!];
      exposed.add(name);
      if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exposed.add(name + s);
    }
    const queried = new Set<string>();
    for (const expr of [...rules.map((r) => String(r['expr'])), ...dashboardExprs]) {
      for (const m of expr.matchAll(/\b(zt_authz_[a-z0-9_]+)\b/g)) queried.add(m[1]!);
    }
    const names = [...queried].sort();
    expect(names.length).toBeGreaterThan(15);
    expect(names.filter((n) => !exposed.has(n)), `queried: ${names.join(', ')}`).toEqual([]);
  });
});
