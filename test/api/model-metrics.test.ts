/**
 * Model monitoring on /metrics, computed from PostgreSQL: predictions and QC failures per
 * classifier version, the flag rate against the one validation predicts, review agreement and
 * drift (PSI) once enough recent predictions exist.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import supertest from 'supertest';
import { type Harness, startHarness, study, waitScored } from '../support/api.js';
import { cloneScored, sample } from '../support/predictions.js';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.close();
});

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

test("with CXR_SITE_PREVALENCE the expected rate and drift use the site's prevalence, and the positive rate counts decisions, not flags", async () => {
  const site = await startHarness({ sitePrevalence: 0.1 });
  try {
    const ws = site.token('workstation', 'ws-p');
    const r = await site.http.post('/v1/studies').set('Authorization', `Bearer ${ws}`).set('Content-Type', 'application/dicom').send(study(311));
    assert.equal(r.status, 202);
    await waitScored(site, r.body.id);
    // a second process of the same site without the setting (started first: starting registers the version's manifest again)
    const plain = await site.restart({ sitePrevalence: null });
    // and one more with the setting, scraped only after the population thresholds are in (a scrape is cached for 5 s)
    const later = await site.restart({});
    // the version as validated: sensitivity 0.95, specificity 0.8 on a split that was 70% pneumonia
    await site.db.ds.query(
      `UPDATE model_versions SET manifest = jsonb_set(jsonb_set(manifest, '{threshold}', manifest->'threshold' || '{"validationSensitivity":0.95,"validationSpecificity":0.8}'),
         '{metrics}', '{"validation":{"confusion":{"tp":665,"fn":35,"tn":240,"fp":60}}}') WHERE kind = 'classifier'`,
    );
    // 40 studies in all, 11 decided positive: 0.275, what 10% prevalence predicts (0.1 x 0.95 + 0.9 x 0.2)
    await site.db.ds.query(`UPDATE predictions SET decision = 'positive', flagged = true`);
    await cloneScored(site.db, r.body.id, [...new Array(10).fill('positive'), ...new Array(29).fill('negative')]);
    const [{ version, flagged }] = (await site.db.ds.query(
      `SELECT mv.name || '@' || mv.version AS version, count(*) FILTER (WHERE pr.flagged)::int AS flagged
         FROM predictions pr JOIN model_versions mv ON mv.id = pr.classifier_id GROUP BY 1`,
    )) as { version: string; flagged: number }[];
    const m = (await site.http.get('/metrics')).text;
    assert.equal(sample(m, 'cxr_model_positive_rate', { model_version: version }), 11 / 40);
    assert.equal(sample(m, 'cxr_model_flag_rate', { model_version: version }), flagged / 40, 'flags, whatever their reason');
    assert.ok(Math.abs((sample(m, 'cxr_model_flag_rate_expected', { model_version: version }) ?? Number.NaN) - 0.275) < 1e-9);
    assert.ok(
      Math.abs(sample(m, 'cxr_drift_psi', { model_version: version, feature: 'positive_rate' }) ?? Number.NaN) < 1e-9,
      'no drift at the declared prevalence',
    );

    // the same studies against validation's 70%: 0.7 x 0.95 + 0.3 x 0.2 = 0.725 expected, a major shift
    const m2 = (await supertest(plain.app).get('/metrics')).text;
    assert.ok(Math.abs((sample(m2, 'cxr_model_flag_rate_expected', { model_version: version }) ?? Number.NaN) - 0.725) < 1e-9);
    const againstValidation = sample(m2, 'cxr_drift_psi', { model_version: version, feature: 'positive_rate' }) ?? Number.NaN;
    assert.ok(againstValidation > 0.25, `PSI ${againstValidation}`);

    // studies decided at a population's own threshold count at that population's operating point:
    // half of them at an adult threshold with sensitivity 1 and specificity 0.45 (0.1 x 1 + 0.9 x 0.55 = 0.595)
    await site.db.ds.query(
      `UPDATE model_versions SET manifest = jsonb_set(manifest, '{threshold,populations}',
         '{"adult":{"value":0.2,"validationSensitivity":1,"validationSpecificity":0.45,"n":55,"positives":30,"datasets":["nih"]}}') WHERE kind = 'classifier'`,
    );
    await site.db.ds.query(
      `UPDATE predictions SET report = jsonb_set(report, '{population,thresholdOf}', '"adult"')
        WHERE id IN (SELECT id FROM predictions ORDER BY id LIMIT 20)`,
    );
    const m3 = (await supertest(later.app).get('/metrics')).text;
    const mixed = sample(m3, 'cxr_model_flag_rate_expected', { model_version: version }) ?? Number.NaN;
    assert.ok(Math.abs(mixed - (0.5 * 0.275 + 0.5 * 0.595)) < 1e-9, `expected ${mixed}`);
  } finally {
    await site.close();
  }
});
