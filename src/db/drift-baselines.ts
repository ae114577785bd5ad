/** A site's drift baseline per classifier version: counted from its predictions in a window, kept in drift_baselines. */
import type { DataSource, EntityManager } from 'typeorm';
import { histogramSql, LUNG_AREA_BIN, PROBABILITY_BIN } from './drift-bins.js';

export interface BaselineCounts {
  n: number;
  positive: number;
  probabilityHistogram: number[];
  lungAreaHistogram: number[];
}

export interface StoredBaseline extends BaselineCounts {
  from: Date;
  to: Date;
  setBy: string;
  setAt: Date;
}

const IN_WINDOW = 'p2.classifier_id = $1 AND p2.created_at >= $2 AND p2.created_at < $3';

/** One version's predictions in [from, to), counted in the bins /metrics uses. */
export async function countBaselineWindow(m: DataSource | EntityManager, classifierId: number, from: Date, to: Date): Promise<BaselineCounts> {
  const [r] = (await m.query(
    `SELECT (SELECT count(*)::int FROM predictions p2 WHERE ${IN_WINDOW}) AS n,
            (SELECT count(*)::int FROM predictions p2 WHERE ${IN_WINDOW} AND p2.decision = 'positive') AS positive,
            ${histogramSql(PROBABILITY_BIN, IN_WINDOW)} AS hist,
            ${histogramSql(LUNG_AREA_BIN, IN_WINDOW)} AS lung_hist`,
    [classifierId, from, to],
  )) as { n: number; positive: number; hist: number[]; lung_hist: number[] }[];
  return { n: r.n, positive: r.positive, probabilityHistogram: r.hist, lungAreaHistogram: r.lung_hist };
}

export async function saveBaseline(m: EntityManager, classifierId: number, b: StoredBaseline): Promise<void> {
  await m.query(
    `INSERT INTO drift_baselines (classifier_id, window_from, window_to, n, positive, probability_histogram, lung_area_histogram, set_by, set_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (classifier_id) DO UPDATE SET window_from = EXCLUDED.window_from, window_to = EXCLUDED.window_to, n = EXCLUDED.n,
       positive = EXCLUDED.positive, probability_histogram = EXCLUDED.probability_histogram, lung_area_histogram = EXCLUDED.lung_area_histogram,
       set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at`,
    [classifierId, b.from, b.to, b.n, b.positive, b.probabilityHistogram, b.lungAreaHistogram, b.setBy, b.setAt],
  );
}

/** Removes a version's baseline; whether there was one. */
export async function deleteBaseline(m: EntityManager, classifierId: number): Promise<boolean> {
  const rows = (await m.query('DELETE FROM drift_baselines WHERE classifier_id = $1 RETURNING classifier_id', [classifierId])) as unknown[];
  // typeorm answers a DELETE … RETURNING with [rows, count]
  const deleted = Array.isArray(rows[0]) ? (rows[0] as unknown[]) : rows;
  return deleted.length > 0;
}

export async function readBaseline(m: DataSource | EntityManager, classifierId: number): Promise<StoredBaseline | null> {
  const rows = (await m.query(
    `SELECT window_from, window_to, n, positive, probability_histogram, lung_area_histogram, set_by, set_at FROM drift_baselines WHERE classifier_id = $1`,
    [classifierId],
  )) as {
    window_from: Date;
    window_to: Date;
    n: number;
    positive: number;
    probability_histogram: number[];
    lung_area_histogram: number[];
    set_by: string;
    set_at: Date;
  }[];
  const r = rows[0];
  if (!r) return null;
  return {
    from: r.window_from,
    to: r.window_to,
    n: r.n,
    positive: r.positive,
    probabilityHistogram: r.probability_histogram,
    lungAreaHistogram: r.lung_area_histogram,
    setBy: r.set_by,
    setAt: r.set_at,
  };
}
