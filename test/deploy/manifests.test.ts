/**
 * The deployment files are rendered and checked with the tools a site would use: `kubectl kustomize`
 * (Debian `kubectl`) for the Kubernetes manifests and `promtool` (Debian `prometheus`) for the alert
 * rules and their unit tests. What is checked is what an outage would hinge on: probes, non-root,
 * read-only filesystems, secrets by reference, autoscaling targets and disruption budgets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

const repo = resolve(import.meta.dirname, '..', '..');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked field by field below
  spec?: any;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { cwd: repo, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`${cmd} is needed for this test (.ci/run installs it): ${r.error.message}`);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function rendered(): K8sObject[] {
  const out = run('kubectl', ['kustomize', 'deploy/k8s']);
  return parseAllDocuments(out).map((d) => d.toJSON() as K8sObject);
}

function one(objs: K8sObject[], kind: string, name: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && o.metadata.name === name);
  assert.equal(found.length, 1, `exactly one ${kind}/${name} in the rendered manifests`);
  return found[0];
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

test('kustomize renders API and worker Deployments that run non-root on a read-only root filesystem with probes and requests', () => {
  const objs = rendered();
  for (const name of ['cxr-triage-api', 'cxr-triage-worker']) {
    const d = one(objs, 'Deployment', name);
    assert.equal(d.metadata.namespace, 'cxr-triage');
    const pod = d.spec.template.spec;
    assert.equal(pod.securityContext.runAsNonRoot, true, `${name}: runAsNonRoot`);
    assert.ok(pod.securityContext.runAsUser > 0, `${name}: a non-zero uid`);
    assert.equal(pod.automountServiceAccountToken, false, `${name}: no API token mounted`);
    assert.ok(matches(d.spec.selector.matchLabels, d.spec.template.metadata.labels), `${name}: selector matches its pods`);
    for (const c of pod.containers) {
      assert.equal(c.securityContext.readOnlyRootFilesystem, true, `${name}/${c.name}: read-only root`);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false, `${name}/${c.name}: no privilege escalation`);
      assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
      for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
        assert.ok(c[probe]?.httpGet?.path, `${name}/${c.name}: ${probe} over HTTP`);
      }
      assert.equal(c.livenessProbe.httpGet.path, '/healthz');
      assert.equal(c.readinessProbe.httpGet.path, '/readyz', 'readiness follows the database and the models, liveness does not');
      assert.ok(c.resources.requests.cpu && c.resources.requests.memory, `${name}/${c.name}: resource requests`);
      assert.ok(c.resources.limits.memory, `${name}/${c.name}: a memory limit`);
      // keys come from a Secret by reference; no literal secret value is ever in a manifest
      assert.ok(c.envFrom.some((e: { secretRef?: { name: string } }) => e.secretRef?.name === 'cxr-triage-keys'));
      for (const e of c.env ?? []) assert.ok(!/SECRET|KEY|PASSWORD|DATABASE_URL/.test(e.name), `${name}: ${e.name} is not set inline`);
      // the only writable paths are volumes
      const mounts = new Set(c.volumeMounts.map((m: { mountPath: string }) => m.mountPath));
      assert.ok(mounts.has('/tmp') && mounts.has('/var/lib/cxr-triage'));
    }
  }
  const api = one(objs, 'Deployment', 'cxr-triage-api').spec.template.spec.containers[0];
  assert.deepEqual(api.args, ['serve', '--workers', '0'], 'API pods do not score: workers do');
  const worker = one(objs, 'Deployment', 'cxr-triage-worker').spec.template.spec.containers[0];
  assert.deepEqual(worker.args, ['worker']);
  assert.equal((one(objs, 'ConfigMap', 'cxr-triage-config') as unknown as { data: Record<string, string> }).data.CXR_STORE, 'pg');
});

test('the API scales on CPU, workers on queue depth, and disruption budgets keep one of each', () => {
  const objs = rendered();
  const hpa = one(objs, 'HorizontalPodAutoscaler', 'cxr-triage-api');
  assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'cxr-triage-api' });
  assert.ok(hpa.spec.minReplicas >= 2, 'no single point of failure');
  assert.equal(hpa.spec.metrics[0].resource.name, 'cpu');

  const so = one(objs, 'ScaledObject', 'cxr-triage-worker');
  assert.equal(so.spec.scaleTargetRef.name, 'cxr-triage-worker');
  assert.ok(so.spec.minReplicaCount >= 1, 'never scaled to zero: an accepted study always has a worker');
  const trigger = so.spec.triggers[0];
  assert.equal(trigger.type, 'postgresql');
  assert.match(trigger.metadata.query, /FROM pgboss\.job WHERE name = '[a-z-]+' AND state IN \('created', 'retry'\)/);
  assert.ok(Number(trigger.metadata.targetQueryValue) > 0);
  const auth = one(objs, 'TriggerAuthentication', trigger.authenticationRef.name);
  assert.equal(auth.spec.secretTargetRef[0].name, 'cxr-triage-keys');

  for (const name of ['cxr-triage-api', 'cxr-triage-worker']) {
    const pdb = one(objs, 'PodDisruptionBudget', name);
    const pods = one(objs, 'Deployment', name).spec.template.metadata.labels;
    assert.ok(matches(pdb.spec.selector.matchLabels, pods), `${name}: the budget selects the Deployment's pods`);
    assert.ok(pdb.spec.minAvailable >= 1);
  }
  const svc = one(objs, 'Service', 'cxr-triage-api');
  assert.ok(matches(svc.spec.selector, one(objs, 'Deployment', 'cxr-triage-api').spec.template.metadata.labels));
  assert.deepEqual(
    svc.spec.ports.map((p: { targetPort: string }) => p.targetPort),
    ['http', 'dimse'],
  );
});

test('the Containerfile is multi-stage with the base image as an argument, runs non-root and has a health check', () => {
  const text = readFileSync(join(repo, 'Containerfile'), 'utf8');
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'));
  const firstFrom = lines.findIndex((l) => /^FROM /.test(l));
  assert.ok(
    lines.slice(0, firstFrom).some((l) => /^ARG BASE_IMAGE=/.test(l)),
    'ARG BASE_IMAGE before the first FROM',
  );
  const froms = lines.filter((l) => /^FROM /.test(l));
  assert.ok(froms.length >= 2 && froms.every((l) => /\$\{BASE_IMAGE\}/.test(l)), 'every stage builds on the argument');
  const user = lines.filter((l) => /^USER /.test(l)).at(-1);
  assert.ok(user && !/^USER (root|0)\b/.test(user), `runs as a non-root user (${user})`);
  assert.ok(
    lines.some((l) => /^HEALTHCHECK .*\/healthz/.test(l)),
    'a health check on /healthz',
  );
  // every path the final image copies from the build context exists in the repository
  for (const l of lines.filter((x) => /^COPY /.test(x) && !x.includes('--from='))) {
    const parts = l.replace(/^COPY\s+/, '').split(/\s+/);
    for (const src of parts.slice(0, -1)) assert.ok(existsSync(join(repo, src)), `COPY source ${src} exists`);
  }
});

test('the compose file runs PostgreSQL, two APIs and two workers with keys from the environment only', () => {
  const doc = parse(readFileSync(join(repo, 'deploy', 'compose.yaml'), 'utf8'), { merge: true });
  assert.deepEqual(Object.keys(doc.services).sort(), ['api', 'postgres', 'worker']);
  assert.equal(doc.services.api.deploy.replicas, 2);
  assert.equal(doc.services.worker.deploy.replicas, 2);
  assert.deepEqual(doc.services.api.command, ['serve', '--workers', '0']);
  assert.deepEqual(doc.services.worker.command, ['worker']);
  for (const s of ['api', 'worker']) {
    const env = doc.services[s].environment as Record<string, string>;
    for (const k of ['CXR_JWT_SECRET', 'CXR_HMAC_KEY']) assert.match(env[k], /^\$\{[A-Z_]+:\?/, `${s}: ${k} must come from the environment`);
    assert.equal(env.CXR_STORE, 'pg');
    assert.equal(doc.services[s].read_only, true);
    assert.equal(doc.services[s].depends_on.postgres.condition, 'service_healthy');
  }
});

test('promtool accepts the alert rules and their unit tests pass', () => {
  const checked = run('promtool', ['check', 'rules', 'deploy/prometheus/alerts.yml']);
  assert.match(checked, /SUCCESS: \d+ rules found/);
  const tested = run('promtool', ['test', 'rules', 'deploy/prometheus/alerts.test.yml']);
  assert.match(tested, /SUCCESS/);
});

test('the Grafana dashboard is valid JSON whose panels all query Prometheus', () => {
  const dash = JSON.parse(readFileSync(join(repo, 'deploy', 'grafana', 'cxr-triage.json'), 'utf8'));
  assert.equal(dash.uid, 'cxr-triage');
  assert.ok(dash.panels.length >= 10);
  const ids = new Set<number>();
  for (const p of dash.panels) {
    assert.ok(!ids.has(p.id), `panel ids are unique (${p.id})`);
    ids.add(p.id);
    assert.ok(p.targets.length > 0 && p.targets.every((t: { expr: string }) => /cxr_/.test(t.expr)), `${p.title} queries a cxr_ metric`);
  }
});
