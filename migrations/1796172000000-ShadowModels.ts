import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Shadow models. `shadow_settings` says which candidate version scores a sample of studies as
 * well (one running at a time, history kept: a row is stopped, never deleted), so every worker
 * process reads the same setting. `shadow_predictions` keeps what the candidate said, apart from
 * `predictions`: the worklist, FHIR, results sent to PACS, statistics and every other reader of
 * `predictions` never see a shadow result. Each row names the exact segmenter and classifier
 * versions that made it; one row per study and pair of versions (a retried job adds nothing).
 */
export class ShadowModels1796172000000 implements MigrationInterface {
  name = 'ShadowModels1796172000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE shadow_settings (
        id          serial PRIMARY KEY,
        kind        text NOT NULL CHECK (kind IN ('segmenter', 'classifier')),
        name        text NOT NULL,
        version     text NOT NULL,
        fraction    double precision NOT NULL CHECK (fraction > 0 AND fraction <= 1),
        started_by  text NOT NULL,
        started_at  timestamptz NOT NULL DEFAULT now(),
        stopped_by  text,
        stopped_at  timestamptz,
        CHECK ((stopped_at IS NULL) = (stopped_by IS NULL))
      )`);
    // at most one candidate runs at a time
    await q.query(`CREATE UNIQUE INDEX shadow_settings_running ON shadow_settings ((true)) WHERE stopped_at IS NULL`);
    await q.query(`
      CREATE TABLE shadow_predictions (
        id                 bigserial PRIMARY KEY,
        study_id           uuid NOT NULL REFERENCES studies (id),
        segmenter_id       integer NOT NULL REFERENCES model_versions (id),
        classifier_id      integer NOT NULL REFERENCES model_versions (id),
        probability        double precision NOT NULL CHECK (probability >= 0 AND probability <= 1),
        threshold          double precision NOT NULL,
        decision           text NOT NULL CHECK (decision IN ('positive', 'negative')),
        flagged            boolean NOT NULL,
        flag_reasons       text[] NOT NULL,
        qc_flags           text[] NOT NULL,
        tta_spread         double precision NOT NULL,
        lung_area_fraction double precision NOT NULL,
        created_at         timestamptz NOT NULL DEFAULT now(),
        UNIQUE (study_id, segmenter_id, classifier_id)
      )`);
    await q.query(`CREATE INDEX shadow_predictions_classifier ON shadow_predictions (classifier_id)`);
    await q.query(`CREATE INDEX shadow_predictions_segmenter ON shadow_predictions (segmenter_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE shadow_predictions`);
    await q.query(`DROP TABLE shadow_settings`);
  }
}
