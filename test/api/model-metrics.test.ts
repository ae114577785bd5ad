/**
 * Model monitoring on /metrics, computed from PostgreSQL: predictions and QC failures per
 * classifier version, the flag rate against the one validation predicts, review agreement and
 * drift (PSI) once enough recent predictions exist.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Harness, startHarness, study, waitScored } from '../support/api.js';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.close();
});

function sample(text: string, name: string, labels: Record<string, string>): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.indexOf('}'));
    const got = Object.fromEntries(body.split(',').map((kv) => kv.split('=').map((x) => x.replace(/"/g, '')) as [string, string]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return null;
}

test('metrics count predictions and QC failures per classifier version and report review agreement, all read from the database', async () => {
  const ws = h.token('workstation', 'ws-m');
  const ids: string[] = [];
  for (const seed of [301, 302, 303]) {
    const r = await h.http.post('/v1/studies').set('Authorization', `Bearer ${ws}`).set('Content-Type', 'application/dicom').send(study(seed));
    assert.equal(r.status, 202);
    ids.push(r.body.id);
  }
  for (const id of ids) await waitScored(h, id);
  const rows: { version: string; qc: number }[] = await h.db.ds.query(
    `SELECT mv.name || '@' || mv.version AS version, count(*) FILTER (WHERE cardinality(pr.qc_flags) > 0)::int AS qc
       FROM predictions pr JOIN model_versions mv ON mv.id = pr.classifier_id GROUP BY 1`,
  );
  assert.equal(rows.length, 1);
  const version = rows[0].version;

  const clin = h.token('clinician', 'dr-m');
  const rv = await h.http.post(`/v1/studies/${ids[0]}/reviews`).set('Authorization', `Bearer ${clin}`).send({ verdict: 'agree' });
  assert.equal(rv.status, 201);
  await h.http.post(`/v1/studies/${ids[1]}/reviews`).set('Authorization', `Bearer ${clin}`).send({ verdict: 'disagree' });

  const m = (await h.http.get('/metrics')).text;
  assert.equal(sample(m, 'cxr_predictions_total', { model_version: version }), 3);
  assert.equal(sample(m, 'cxr_qc_failures_total', { model_version: version }), rows[0].qc);
  assert.equal(sample(m, 'cxr_reviews_considered', { model_version: version }), 2);
  assert.equal(sample(m, 'cxr_review_agreement_ratio', { model_version: version }), 0.5);
  // three predictions are too few to call a flag rate or drift
  assert.equal(sample(m, 'cxr_model_flag_rate', { model_version: version }), null);
  assert.equal(sample(m, 'cxr_drift_psi', { model_version: version, feature: 'positive_rate' }), null);
  assert.equal(sample(m, 'cxr_storage_full', {}), null, 'an unlabelled gauge is matched below');
  assert.match(m, /^cxr_storage_full 0$/m);
});

test('every metric the alert rules and the dashboard query is one /metrics serves', async () => {
  const served = new Set(
    (await h.http.get('/metrics')).text
      .split('\n')
      .filter((l) => l.startsWith('# TYPE '))
      .map((l) => l.split(' ')[2]),
  );
  const repo = join(import.meta.dirname, '..', '..');
  const queried = new Set(
    [readFileSync(join(repo, 'deploy/prometheus/alerts.yml'), 'utf8'), readFileSync(join(repo, 'deploy/grafana/cxr-triage.json'), 'utf8')]
      .flatMap((t) => t.match(/cxr_[a-z_]+/g) ?? [])
      .map((n) => n.replace(/_(bucket|sum|count)$/, '')),
  );
  assert.ok(queried.size >= 10);
  assert.deepEqual(
    [...queried].filter((n) => !served.has(n)),
    [],
    'no alert or panel watches a metric that does not exist',
  );
});
