/**
 * The bins /metrics counts predictions in, as SQL, so the recent window and a site's baseline
 * are counted alike (and like src/ml/drift-reference.ts counts validation: 10 equal bins,
 * probabilities over [0, 1], lung area over [0, 0.6), values beyond in the end bins).
 */
export const PROBABILITY_BIN = 'LEAST(width_bucket(p2.probability, 0, 1, 10), 10)';
export const LUNG_AREA_BIN = 'LEAST(GREATEST(width_bucket(p2.lung_area_fraction, 0, 0.6, 10), 1), 10)';

/** An int[10] of prediction counts per bin (`p2` is the predictions row), for those matching `where`. */
export function histogramSql(bin: string, where: string): string {
  return `(SELECT array_agg(COALESCE(h.n, 0) ORDER BY b.bin)
             FROM generate_series(1, 10) b(bin)
             LEFT JOIN (SELECT ${bin} AS bin, count(*)::int AS n FROM predictions p2 WHERE ${where} GROUP BY 1) h ON h.bin = b.bin)`;
}
