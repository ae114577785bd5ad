/**
 * Monitoring of the models in use, computed from PostgreSQL at scrape time so that every API
 * process reports the same numbers whichever process or worker scored: predictions and QC
 * failures per classifier version, the recent flag rate against the rate its validation
 * predicts, review agreement, the recent probability distribution, and drift as PSI against
 * validation (README "Running at scale" explains each; deploy/prometheus/alerts.yml uses them).
 * One query serves a scrape; results are reused for a few seconds.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import { type ModelActivity, modelActivity } from '../db/model-monitoring.js';
import type { ShadowComparison } from '../db/shadow.js';
import { driftFeatures, referencePositiveRate } from '../service/drift.js';
import { shadowComparisons } from '../service/shadow.js';

/** fewer recent predictions than this and the flag rate and drift are not reported (too noisy) */
export const MIN_RECENT_FOR_DRIFT = 30;

export interface ModelMetricsOptions {
  ds: DataSource;
  registry: Registry;
  /** whether the store refuses writes for lack of room */
  storageFull?: () => boolean;
  recentHours?: number;
  cacheMs?: number;
  /** the share of pneumonia the site expects among its studies (CXR_SITE_PREVALENCE); null: validation's */
  sitePrevalence?: number | null;
}

const BIN_LABELS = Array.from({ length: 10 }, (_, i) => `${(i / 10).toFixed(1)}-${((i + 1) / 10).toFixed(1)}`);

export function registerModelMetrics(o: ModelMetricsOptions): void {
  let cached: { at: number; rows: Promise<ModelActivity[]> } | null = null;
  const activity = (): Promise<ModelActivity[]> => {
    const now = Date.now();
    if (!cached || now - cached.at > (o.cacheMs ?? 5000)) {
      cached = { at: now, rows: modelActivity(o.ds, o.recentHours ?? 24) };
      cached.rows.catch(() => {
        cached = null;
      });
    }
    return cached.rows;
  };
  let shadowCached: { at: number; rows: Promise<ShadowComparison[]> } | null = null;
  const shadows = (): Promise<ShadowComparison[]> => {
    const now = Date.now();
    if (!shadowCached || now - shadowCached.at > (o.cacheMs ?? 5000)) {
      shadowCached = { at: now, rows: shadowComparisons(o.ds) };
      shadowCached.rows.catch(() => {
        shadowCached = null;
      });
    }
    return shadowCached.rows;
  };
  const registers = [o.registry];
  // counters follow the database's monotonic counts: each scrape adds what was stored since the last one
  const counted = new Map<string, number>();
  const countFrom = (key: 'predictions' | 'qcFailures') =>
    async function collect(this: Counter<'model_version'>) {
      for (const a of await activity()) {
        const id = `${key}:${a.modelVersion}`;
        const last = counted.get(id) ?? 0;
        this.inc({ model_version: a.modelVersion }, Math.max(0, a[key] - last));
        counted.set(id, Math.max(last, a[key]));
      }
    };
  new Counter({
    name: 'cxr_predictions_total',
    help: 'Predictions stored, per classifier version',
    labelNames: ['model_version'],
    registers,
    collect: countFrom('predictions'),
  });
  new Counter({
    name: 'cxr_qc_failures_total',
    help: 'Predictions with a QC flag, per classifier version',
    labelNames: ['model_version'],
    registers,
    collect: countFrom('qcFailures'),
  });
  const perModel = (name: string, help: string, value: (a: ModelActivity) => number | null, extraLabels: string[] = []) =>
    new Gauge({
      name,
      help,
      labelNames: ['model_version', ...extraLabels],
      registers,
      async collect() {
        this.reset();
        for (const a of await activity()) {
          const v = value(a);
          if (v !== null && Number.isFinite(v)) this.set({ model_version: a.modelVersion }, v);
        }
      },
    });
  const prevalence = o.sitePrevalence ?? null;
  perModel(
    'cxr_model_flag_rate',
    `Share of studies flagged for review for any reason (positive, uncertain or QC) in the last ${o.recentHours ?? 24} h (reported from ${MIN_RECENT_FOR_DRIFT} predictions)`,
    (a) => (a.recent >= MIN_RECENT_FOR_DRIFT ? a.recentFlagged / a.recent : null),
  );
  // positive decisions alone are what the operating point predicts; flags also count uncertain and QC studies
  perModel(
    'cxr_model_positive_rate',
    `Share of studies decided positive in the last ${o.recentHours ?? 24} h (reported from ${MIN_RECENT_FOR_DRIFT} predictions)`,
    (a) => (a.recent >= MIN_RECENT_FOR_DRIFT ? a.recentPositive / a.recent : null),
  );
  perModel(
    'cxr_model_flag_rate_expected',
    "The positive rate recent studies are held against: the site's drift baseline's (cxr-triage model baseline) when set, else what the version's " +
      "operating points (each study's: precision, population threshold) predict at " +
      (prevalence === null ? "validation's prevalence (set CXR_SITE_PREVALENCE for the site's)" : `the site's prevalence ${prevalence} (CXR_SITE_PREVALENCE)`),
    (a) => referencePositiveRate(a.manifest, a, prevalence),
  );
  perModel(
    'cxr_drift_baseline_studies',
    "Predictions in the site's own drift baseline (cxr-triage model baseline); absent: drift is against validation",
    (a) => (a.siteBaseline ? a.siteBaseline.n : null),
  );
  perModel('cxr_review_agreement_ratio', "Share of reviewed studies (last 30 days) whose latest review agrees with the model's decision", (a) =>
    a.reviewed > 0 ? a.agreed / a.reviewed : null,
  );
  perModel('cxr_reviews_considered', 'Reviewed studies behind cxr_review_agreement_ratio', (a) => a.reviewed);
  new Gauge({
    name: 'cxr_model_recent_probability_share',
    help: 'Share of the recent predictions per probability bin, per classifier version',
    labelNames: ['model_version', 'bin'],
    registers,
    async collect() {
      this.reset();
      for (const a of await activity()) {
        if (a.recent === 0) continue;
        a.recentHistogram.forEach((n, i) => this.set({ model_version: a.modelVersion, bin: BIN_LABELS[i] }, n / a.recent));
      }
    },
  });
  new Gauge({
    name: 'cxr_drift_psi',
    help:
      'Population stability index of recent predictions against validation: feature positive_rate (positive vs negative decisions against the ' +
      'rate validation predicts, at CXR_SITE_PREVALENCE when set) and, when the manifest records validation histograms (drift, written by calibrate), probability and lung_area',
    labelNames: ['model_version', 'feature'],
    registers,
    async collect() {
      this.reset();
      for (const a of await activity()) {
        if (a.recent < MIN_RECENT_FOR_DRIFT) continue;
        for (const d of driftFeatures(a, a.manifest, prevalence)) this.set({ model_version: a.modelVersion, feature: d.feature }, d.psi);
      }
    },
  });
  const perCandidate = (name: string, help: string, value: (c: ShadowComparison) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['candidate', 'running'],
      registers,
      async collect() {
        this.reset();
        for (const c of await shadows()) {
          const v = value(c);
          if (v !== null && Number.isFinite(v)) this.set({ candidate: c.candidate, running: String(c.setting?.stoppedAt === null) }, v);
        }
      },
    });
  perCandidate(
    'cxr_shadow_agreement_ratio',
    "Share of a shadow candidate's scored studies where its decision matches the active model's",
    (c) => c.decisionAgreement,
  );
  perCandidate('cxr_shadow_scored', 'Studies a shadow candidate scored (its results are kept apart from the served ones)', (c) => c.scored);
  perCandidate(
    'cxr_shadow_mean_abs_probability_difference',
    'Mean |candidate probability - active probability| over the studies both scored',
    (c) => c.meanAbsProbabilityDifference,
  );
  if (o.storageFull) {
    const full = o.storageFull;
    new Gauge({
      name: 'cxr_storage_full',
      help: '1 while the store refuses new studies for lack of room (507 E_STORAGE_FULL), else 0',
      registers,
      collect() {
        this.set(full() ? 1 : 0);
      },
    });
  }
}
