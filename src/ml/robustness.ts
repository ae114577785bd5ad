/**
 * What an acquisition shift does to the shipped operating point, as pure functions over the
 * same films scored twice (as they are, and shifted). AUC alone hides what a site notices:
 * the threshold stays where validation put it, so a shift that moves every probability up
 * flags normal films without changing the ranking. Each film is compared with itself, so
 * the figures say how many decisions the shift changed and which way.
 */
import type { AcquisitionShift } from '../data/acquisition-shifts.js';
import { splitItemSet } from './calibrate.js';
import type { EvalItem, EvaluationResult } from './evaluate.js';
import { binaryMetrics, confusionAt, rocAuc } from './metrics.js';

/** The file `robustness --save` writes in a version's evaluations/ and its model card reads. */
export const ROBUSTNESS_FILE = 'robustness.json';

export interface ScoredFilm {
  id: string;
  /** 1 pneumonia, 0 normal */
  label: number;
  probability: number;
  /** the threshold the film is decided at (its population's) */
  threshold: number;
}

export interface ShiftFigures {
  n: number;
  /** over each film's margin above its threshold (its probability when all share one) */
  auc: number | null;
  recall: number | null;
  specificity: number | null;
  accuracy: number | null;
  /** share of films decided positive */
  flaggedShare: number;
  /** mean |p shifted − p as is| */
  meanAbsDelta: number;
  /** mean p shifted − p as is: which way the shift moves probabilities */
  meanDelta: number;
  /** films whose decision differs from the one made on them as they are */
  changed: number;
  /** normal films not flagged as they are and flagged shifted */
  normalsNewlyFlagged: number;
  /** pneumonia films flagged as they are and missed shifted */
  pneumoniaNewlyMissed: number;
}

const positive = (f: ScoredFilm): boolean => f.probability >= f.threshold;

/** The figures of `films` alone (no comparison): the baseline row's. */
export function operatingFigures(films: readonly ScoredFilm[]): Pick<ShiftFigures, 'n' | 'auc' | 'recall' | 'specificity' | 'accuracy' | 'flaggedShare'> {
  const margins = films.map((f) => f.probability - f.threshold);
  const labels = films.map((f) => f.label);
  const m = binaryMetrics(confusionAt(margins, labels, 0));
  return {
    n: films.length,
    auc: rocAuc(margins, labels),
    recall: m.recall,
    specificity: m.specificity,
    accuracy: m.accuracy,
    flaggedShare: films.length === 0 ? 0 : films.filter(positive).length / films.length,
  };
}

/** `shifted` against `asIs`: the same films (matched by id), each compared with itself. */
export function shiftFigures(asIs: readonly ScoredFilm[], shifted: readonly ScoredFilm[]): ShiftFigures {
  const base = new Map(asIs.map((f) => [f.id, f] as const));
  if (base.size !== asIs.length) throw new RangeError('films scored as they are repeat an id');
  if (shifted.length !== asIs.length) throw new RangeError(`${shifted.length} shifted films against ${asIs.length} as they are`);
  let abs = 0;
  let signed = 0;
  let changed = 0;
  let normalsNewlyFlagged = 0;
  let pneumoniaNewlyMissed = 0;
  for (const s of shifted) {
    const b = base.get(s.id);
    if (!b) throw new RangeError(`film ${s.id} was not scored as it is`);
    const d = s.probability - b.probability;
    abs += Math.abs(d);
    signed += d;
    const was = positive(b);
    const now = positive(s);
    if (was !== now) {
      changed++;
      if (now && s.label < 0.5) normalsNewlyFlagged++;
      if (!now && s.label >= 0.5) pneumoniaNewlyMissed++;
    }
  }
  const n = shifted.length;
  return {
    ...operatingFigures(shifted),
    meanAbsDelta: n === 0 ? 0 : abs / n,
    meanDelta: n === 0 ? 0 : signed / n,
    changed,
    normalsNewlyFlagged,
    pneumoniaNewlyMissed,
  };
}

export type AsIsFigures = ReturnType<typeof operatingFigures>;

export interface SetReport {
  set: string;
  pneumonia: number;
  /** the threshold most of the set's films were decided at */
  threshold: number;
  asIs: AsIsFigures;
  shifts: { shift: string; emulates: string; figures: ShiftFigures }[];
}

export interface RobustnessReport {
  classifier: string;
  segmenter: string;
  /** the precision each network ran at (reports saved before it was recorded lack it) */
  precision?: { classifier: string; segmenter: string };
  subset: string | null;
  population: string | null;
  tta: number | null;
  sets: SetReport[];
}

/** The films of one scoring run, each with the threshold it was decided at. */
function films(result: EvaluationResult): ScoredFilm[] {
  return result.images.map((i) => ({ id: i.id, label: i.label, probability: i.probability, threshold: i.threshold ?? result.threshold }));
}

function mostCommon(values: readonly number[]): number {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0][0];
}

/** Rows of each set: the items' order is the results' order (evaluateItems scores in order). */
export function robustnessSets(
  items: readonly EvalItem[],
  dataDirs: readonly string[],
  asIs: EvaluationResult,
  shifted: readonly { shift: AcquisitionShift; result: EvaluationResult }[],
): SetReport[] {
  const setOf = items.map((i) => splitItemSet(i, dataDirs) || 'all');
  const base = films(asIs);
  const names = [...new Set(setOf)].sort();
  return names.map((set) => {
    const mine = <T>(xs: readonly T[]): T[] => xs.filter((_, k) => setOf[k] === set);
    const b = mine(base);
    return {
      set,
      pneumonia: b.filter((f) => f.label >= 0.5).length,
      threshold: mostCommon(b.map((f) => f.threshold)),
      asIs: operatingFigures(b),
      shifts: shifted.map(({ shift, result }) => ({ shift: shift.name, emulates: shift.emulates, figures: shiftFigures(b, mine(films(result))) })),
    };
  });
}
