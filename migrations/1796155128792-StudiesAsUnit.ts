import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The study (one StudyInstanceUID) becomes the unit a clinician reads; the `studies` table
 * keeps one row per received instance. Each instance now records the study's accession number
 * and date (shown on the worklist row), and why it does not count toward the study's decision
 * (`exclusion_reason`): a lateral, oblique or non-chest image is kept and listed but not
 * scored (`not_scored`); an image without ViewPosition is scored and excluded when the view
 * check says it is not a frontal film.
 *
 * Existing data moves: instances scored before this migration whose ViewPosition or body part
 * says they are not a frontal chest get the same exclusion a new one would (their prediction
 * rows stay, as history); accession number and study date stay unknown for them, since they
 * were not recorded at the time.
 */
export class StudiesAsUnit1796155128792 implements MigrationInterface {
  name = 'StudiesAsUnit1796155128792';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE studies ADD COLUMN accession_number text, ADD COLUMN study_date date, ADD COLUMN exclusion_reason text`);
    await q.query(`ALTER TABLE studies DROP CONSTRAINT studies_status_check`);
    await q.query(`ALTER TABLE studies ADD CONSTRAINT studies_status_check CHECK (status IN ('queued', 'scored', 'failed', 'not_scored'))`);
    await q.query(`ALTER TABLE studies ADD CONSTRAINT studies_not_scored_has_reason CHECK (status <> 'not_scored' OR exclusion_reason IS NOT NULL)`);
    await q.query(`
      UPDATE studies SET exclusion_reason = 'not a frontal view (ViewPosition ' || upper(btrim(view_position)) || '); scored before studies were grouped'
       WHERE upper(btrim(view_position)) IN ('LATERAL', 'LAT', 'LL', 'RL', 'LLD', 'RLD', 'LLO', 'RLO', 'LAO', 'RAO', 'LPO', 'RPO', 'OBLIQUE', 'XTABLE', 'LLAT', 'RLAT')`);
    await q.query(`
      UPDATE studies SET exclusion_reason = 'body part ''' || btrim(body_part) || ''' is not the chest; scored before studies were grouped'
       WHERE exclusion_reason IS NULL AND btrim(coalesce(body_part, '')) <> '' AND upper(body_part) !~ '(CHEST|THORAX|LUNG)'`);
    await q.query(`CREATE INDEX studies_accession_number ON studies (accession_number) WHERE accession_number IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX studies_accession_number`);
    await q.query(`UPDATE studies SET status = 'failed', error_code = 'E_NOT_SCORED', error_message = exclusion_reason WHERE status = 'not_scored'`);
    await q.query(`ALTER TABLE studies DROP CONSTRAINT studies_not_scored_has_reason`);
    await q.query(`ALTER TABLE studies DROP CONSTRAINT studies_status_check`);
    await q.query(`ALTER TABLE studies ADD CONSTRAINT studies_status_check CHECK (status IN ('queued', 'scored', 'failed'))`);
    await q.query(`ALTER TABLE studies DROP COLUMN accession_number, DROP COLUMN study_date, DROP COLUMN exclusion_reason`);
  }
}
