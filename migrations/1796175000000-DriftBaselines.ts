import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A site's own reference for drift: what one classifier version's predictions looked like here
 * over a window an operator accepted (`cxr-triage model baseline`). Validation's histograms
 * describe the training hospitals' mix of adults, children and pneumonia; a site whose mix
 * differs would see the drift alerts fire for ever against them. One row per version; setting
 * it again replaces it (the audit log keeps every setting).
 */
export class DriftBaselines1796175000000 implements MigrationInterface {
  public async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE drift_baselines (
        classifier_id         integer PRIMARY KEY REFERENCES model_versions (id),
        window_from           timestamptz NOT NULL,
        window_to             timestamptz NOT NULL CHECK (window_to > window_from),
        n                     integer NOT NULL CHECK (n > 0),
        positive              integer NOT NULL CHECK (positive >= 0 AND positive <= n),
        probability_histogram integer[] NOT NULL CHECK (cardinality(probability_histogram) = 10),
        lung_area_histogram   integer[] NOT NULL CHECK (cardinality(lung_area_histogram) = 10),
        set_by                text NOT NULL,
        set_at                timestamptz NOT NULL
      )`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE drift_baselines');
  }
}
