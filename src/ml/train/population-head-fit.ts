/**
 * Fitting a population's own head (ml/population-head.ts) on a feature cache of a version's
 * served features. Two heads are fitted: the version's recipe on every set (`joint`: its set
 * weights, L2 and train views) and one on this population's sets alone (`own`); the head served
 * blends them, (1 - own) x joint + own x own-head, per view before the sigmoid.
 *
 * Which blend, and the threshold and calibration that go with it, are chosen on the train films
 * of the population scored out of fold (each by heads fitted without its patient's films, the
 * logits averaged over several deals of the folds) together with its validation films scored by
 * the heads fitted on every train film. For adults that is 407 films with 218 pneumonias instead
 * of 55 with 30: a recall-0.95 threshold on 30 positives is set by one or two films.
 */
import { CxrError } from '../../errors.js';
import { patientFolds } from '../cross-fit.js';
import { float32ToBase64 } from '../float32-base64.js';
import { fitCalibrationInfo } from '../calibrate.js';
import { calibrateThreshold, rocAuc } from '../metrics.js';
import type { Population, PopulationHeadInfo, PopulationThreshold } from '../model-store/index.js';
import { blendLinearHeads, populationHeadProbability } from '../population-head.js';
import type { FeatureRow } from './feature-cache.js';
import { fitHeadOnRows, headLogit, type LinearHead } from './head-rows.js';

export interface PopulationHeadFitOptions {
  population: Population;
  /** dataset name → its population: the sets of `population` are the own head's */
  sets: ReadonlyMap<string, Population>;
  /** the version's recipe: each set's share in the joint fit (its sets are the joint head's rows) */
  jointWeights: Readonly<Record<string, number>>;
  l2: { joint: number; own: number };
  trainViews: number;
  /** the own head's shares tried (0: the joint head alone) */
  blends: readonly number[];
  folds: number;
  deals: number;
  seed: number;
  targetRecall: number;
  /** image id → patient id (whole patients stay in one fold) */
  patientOf: ReadonlyMap<string, string>;
  featurePrecision: string;
  now?: Date;
  onProgress?: (line: string) => void;
}

export interface BlendFigures {
  own: number;
  auc: number;
  specificity: number | null;
}

export interface PopulationHeadFit {
  /** the population's operating point, its calibration and its head */
  threshold: PopulationThreshold;
  chosen: BlendFigures;
  tried: BlendFigures[];
  /** the films it was chosen on: raw probabilities of the chosen blend, labels, ids */
  chosenOn: { ids: string[]; raw: number[]; labels: number[] };
}

/** Each view's logit under a head. */
function logits(head: LinearHead, row: FeatureRow): number[] {
  return row.views.map((f) => headLogit(head, f));
}

/** The served probability of a per-view logit blend: the views' mean sigmoid. */
function blendedProbability(joint: readonly number[], own: readonly number[], share: number): number {
  let s = 0;
  for (let v = 0; v < joint.length; v++) s += 1 / (1 + Math.exp(-((1 - share) * joint[v] + share * own[v])));
  return s / joint.length;
}

/** The better of two blends at the operating point: higher specificity at the target recall, then higher AUC. */
function better(a: BlendFigures, b: BlendFigures): boolean {
  const sa = a.specificity ?? -1;
  const sb = b.specificity ?? -1;
  return sa !== sb ? sa > sb : a.auc > b.auc;
}

export async function fitPopulationHead(rows: readonly FeatureRow[], o: PopulationHeadFitOptions): Promise<PopulationHeadFit> {
  const say = o.onProgress ?? (() => {});
  if (o.blends.length === 0 || o.blends.some((b) => !(b >= 0 && b <= 1))) throw new CxrError('E_BAD_ARGUMENT', 'blend shares must be in [0,1]');
  const ownSets = [...o.sets].filter(([, p]) => p === o.population).map(([s]) => s);
  const jointRows = rows.filter((r) => r.source in o.jointWeights);
  const train = jointRows.filter((r) => r.split === 'train');
  const isOwn = (r: FeatureRow) => ownSets.includes(r.source);
  const ownTrain = train.filter(isOwn);
  const ownValidation = rows.filter((r) => r.split === 'validation' && isOwn(r));
  if (ownTrain.length === 0)
    throw new CxrError('E_BAD_ARGUMENT', `no train films of the ${o.population} population (sets ${ownSets.join(', ') || 'none'}) in the cache`);
  if (!ownValidation.some((r) => r.label >= 0.5)) throw new CxrError('E_BAD_ARGUMENT', `no ${o.population} validation film with pneumonia in the cache`);
  for (const r of train) if (!o.patientOf.has(r.id)) throw new CxrError('E_BAD_ARGUMENT', `${r.id} has no patient in the split`);
  const fitJoint = (rs: readonly FeatureRow[]) => fitHeadOnRows(rs, o.jointWeights, o.l2.joint, o.trainViews);
  const fitOwn = (rs: readonly FeatureRow[]) => fitHeadOnRows(rs, {}, o.l2.own, o.trainViews);

  // out of fold: each own train film's per-view logits under both heads, averaged over the deals
  const oofJoint = new Map<FeatureRow, number[]>(ownTrain.map((r) => [r, r.views.map(() => 0)]));
  const oofOwn = new Map<FeatureRow, number[]>(ownTrain.map((r) => [r, r.views.map(() => 0)]));
  const add = (into: Map<FeatureRow, number[]>, r: FeatureRow, z: readonly number[]) => {
    const acc = into.get(r)!;
    for (let v = 0; v < acc.length; v++) acc[v] += z[v] / o.deals;
  };
  const members = train.map((r) => ({ patient: o.patientOf.get(r.id)!, group: r.source }));
  for (let deal = 0; deal < o.deals; deal++) {
    const fold = patientFolds(members, o.folds, o.seed + deal);
    for (let k = 0; k < o.folds; k++) {
      const outside = train.filter((_, i) => fold[i] !== k);
      const held = train.filter((r, i) => fold[i] === k && isOwn(r));
      const [joint, own] = [await fitJoint(outside), await fitOwn(outside.filter(isOwn))];
      for (const r of held) {
        add(oofJoint, r, logits(joint, r));
        add(oofOwn, r, logits(own, r));
      }
      say(`deal ${deal + 1}/${o.deals}, fold ${k + 1}/${o.folds}: fitted on ${outside.length} train films and scored ${held.length}`);
    }
  }
  const joint = await fitJoint(train);
  const own = await fitOwn(ownTrain);
  say(`fitted on every train film: joint ${train.length}, ${o.population} ${ownTrain.length}`);

  const films = [...ownTrain, ...ownValidation];
  const zJoint = films.map((r) => (r.split === 'train' ? oofJoint.get(r)! : logits(joint, r)));
  const zOwn = films.map((r) => (r.split === 'train' ? oofOwn.get(r)! : logits(own, r)));
  const labels = films.map((r) => (r.label >= 0.5 ? 1 : 0));
  const positives = labels.filter((y) => y === 1).length;
  const rawFor = (share: number) => films.map((_, i) => blendedProbability(zJoint[i], zOwn[i], share));
  const tried = o.blends.map((share): BlendFigures => {
    const raw = rawFor(share);
    return { own: share, auc: rocAuc(raw, labels) ?? 0, specificity: calibrateThreshold(raw, labels, o.targetRecall).specificity };
  });
  const chosen = tried.reduce((a, b) => (better(b, a) ? b : a));
  const blended = blendLinearHeads(joint, own, chosen.own);
  const w = Float32Array.from(blended.weights);
  // validation films as the engine will score them: the stored float32 weights, not the blend's doubles
  const served = { weights: w, bias: blended.bias };
  const raw = rawFor(chosen.own).map((p, i) => (films[i].split === 'train' ? p : populationHeadProbability(served, films[i].views)));
  const at = (o.now ?? new Date()).toISOString();
  const cal = fitCalibrationInfo(raw, labels, 'platt', {
    views: Math.max(...films.map((r) => r.views.length)),
    subset: 'train-out-of-fold+validation',
    n: films.length,
    split: 'split.csv',
    at,
  });
  const t = calibrateThreshold(cal.calibrated, labels, o.targetRecall);
  const head: PopulationHeadInfo = {
    inputs: w.length,
    weights: float32ToBase64(w),
    bias: blended.bias,
    featurePrecision: o.featurePrecision,
    blend: { own: chosen.own, joint: 1 - chosen.own },
    fittedOn: {
      subset: 'train',
      n: train.length,
      views: o.trainViews,
      l2: { ...o.l2 },
      jointSets: { ...o.jointWeights },
      sets: ownSets,
      at,
    },
    chosenOn: { folds: o.folds, deals: o.deals, seed: o.seed, n: films.length, positives, tried },
  };
  return {
    threshold: {
      value: t.threshold,
      validationSensitivity: t.sensitivity,
      validationSpecificity: t.specificity,
      n: films.length,
      positives,
      datasets: ownSets,
      calibration: cal.info,
      head,
    },
    chosen,
    tried,
    chosenOn: { ids: films.map((r) => r.id), raw, labels },
  };
}
