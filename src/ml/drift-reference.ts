/**
 * What a classifier's validation images looked like through the served pipeline, kept in its
 * manifest so a running service can tell whether today's studies look the same (PSI on
 * /metrics). Bins match the ones the database counts recent predictions in
 * (src/db/model-monitoring.ts: width_bucket over the same ranges, the top value in the last bin).
 */

export const DRIFT_BINS = 10;
/** lung area as a share of the segmenter's frame: QC's limits sit well inside [0, 0.6) */
export const LUNG_AREA_RANGE: readonly [number, number] = [0, 0.6];

export interface DriftReference {
  /** the subset and number of images the histograms count */
  subset: string;
  n: number;
  /** served (calibrated) probabilities in DRIFT_BINS bins over [0, 1] */
  probabilityHistogram: number[];
  /** lung area fractions in DRIFT_BINS bins over LUNG_AREA_RANGE (values beyond fall in the end bins) */
  lungAreaHistogram?: number[];
}

/** Counts per equal-width bin over [lo, hi); values below lo fall in the first bin, at or above hi in the last. */
export function histogram(values: readonly number[], lo: number, hi: number, bins = DRIFT_BINS): number[] {
  const out = new Array<number>(bins).fill(0);
  for (const v of values) {
    const b = Math.floor(((v - lo) / (hi - lo)) * bins);
    out[Math.min(bins - 1, Math.max(0, b))]++;
  }
  return out;
}

export function driftReference(subset: string, probabilities: readonly number[], lungAreas: readonly (number | undefined)[]): DriftReference {
  const areas = lungAreas.filter((a): a is number => a !== undefined);
  return {
    subset,
    n: probabilities.length,
    probabilityHistogram: histogram(probabilities, 0, 1),
    ...(areas.length === probabilities.length ? { lungAreaHistogram: histogram(areas, LUNG_AREA_RANGE[0], LUNG_AREA_RANGE[1]) } : {}),
  };
}

/**
 * `previous` with its probabilities replaced (a change to how studies are scored, not to their
 * lungs): the lung-area histogram stays when it counted as many films, else it is left out
 * (`areasDropped`), since histograms of different films are not one reference.
 */
export function withNewProbabilities(
  previous: DriftReference | undefined,
  subset: string,
  probabilities: readonly number[],
): { reference: DriftReference; areasDropped: boolean } {
  const fresh = driftReference(subset, probabilities, []);
  const areas = previous?.lungAreaHistogram;
  const keep = areas !== undefined && previous!.n === fresh.n;
  return { reference: { ...fresh, ...(keep ? { lungAreaHistogram: areas } : {}) }, areasDropped: areas !== undefined && !keep };
}
