/**
 * The intensity reference a refit version's crops are matched to (`refit-head
 * --match-intensity`): the mean quantile function of train films' lung crops, cut as the
 * served pipeline cuts them (the base version's segmenter masks, no matching), or with
 * `--match-scope film` of the whole films, each set weighed equally so that 3,300 children's
 * films do not make the adults' look the odd ones.
 */
import { createHash } from 'node:crypto';
import { CxrError } from '../errors.js';
import { loadEngine } from '../inference/engine.js';
import { filmQuantileFunction, meanQuantiles, quantileFunction, type MatchScope } from '../imaging/intensity-match.js';
import { classifierCrop } from '../imaging/pixel-contract.js';
import type { EvalItem } from '../ml/evaluate.js';
import { intensityIdentity, type IntensityInfo } from '../ml/model-store/index.js';
import { ProgressBar } from '../ml/train/progress.js';
import { evenlySpread } from './score-items.js';

/** Stored to this many decimals, and used as stored: the features are extracted with the manifest's values. */
const DECIMALS = 6;

export interface ReferenceOptions {
  classifierDir: string;
  segmenterDir: string;
  segmenterVersion: string;
  inputSize: number;
  /** 'crop': the mean of the lung crops' quantile functions, ranks taken within each crop; 'film': the mean of whole films' */
  scope: MatchScope;
  threads?: number;
  /** the set a film counts under (default: its pool set): a one-folder run names its folder */
  setOf?: (item: EvalItem) => string;
}

const poolSet = (item: EvalItem): string => item.source ?? '';

/**
 * At most `perSet` train items of each set, spread evenly over the set's train films in
 * their order: a folder lists normal films apart from pneumonias, so the first N would
 * fit the reference to one class.
 */
export function referenceFilms(
  items: readonly EvalItem[],
  isTrain: (id: string) => boolean,
  perSet: number,
  setOf: (item: EvalItem) => string = poolSet,
): EvalItem[] {
  const bySet = new Map<string, EvalItem[]>();
  for (const item of items) {
    if (!isTrain(item.id)) continue;
    const set = setOf(item);
    const films = bySet.get(set) ?? [];
    films.push(item);
    bySet.set(set, films);
  }
  return [...bySet.values()].flatMap((films) => evenlySpread(films, perSet));
}

export async function fitIntensityReference(films: readonly EvalItem[], o: ReferenceOptions): Promise<IntensityInfo> {
  if (films.length === 0) throw new CxrError('E_BAD_ARGUMENT', 'no train films to fit the intensity reference on');
  // a film-scope reference reads whole films: no network needed
  const engine =
    o.scope === 'crop' ? await loadEngine({ classifierDir: o.classifierDir, segmenterDir: o.segmenterDir, tta: 1, threads: o.threads, intensity: null }) : null;
  const perSet = new Map<string, Float64Array[]>();
  const bar = new ProgressBar(process.stderr, 'intensity reference', films.length);
  try {
    for (const item of films) {
      const image = await item.image();
      const set = (o.setOf ?? poolSet)(item);
      let q: Float64Array;
      if (o.scope === 'film') q = filmQuantileFunction(image);
      else {
        const { mask } = await engine!.scoreImage(image, { tta: 1 });
        q = quantileFunction(classifierCrop(image, mask, o.inputSize).crop.data);
      }
      const functions = perSet.get(set) ?? [];
      functions.push(q);
      perSet.set(set, functions);
      bar.tick(1);
    }
  } finally {
    await engine?.close();
  }
  bar.finish();
  const sets = [...perSet.keys()].sort();
  const mean = meanQuantiles(sets.map((s) => meanQuantiles(perSet.get(s)!)));
  const round = 10 ** DECIMALS;
  return {
    method: o.scope === 'film' ? 'film-quantile-match' : 'quantile-match',
    quantiles: Array.from(mean, (v) => Math.round(v * round) / round),
    fittedOn: {
      films: films.length,
      sets: Object.fromEntries(sets.map((s) => [s, perSet.get(s)!.length])),
      subset: 'train',
      segmenter: o.segmenterVersion,
      at: new Date().toISOString(),
    },
  };
}

/** A short tag of a reference (or of none), kept on each cached feature row: rows of another reference are not mixed in. */
export function intensityTag(info: Pick<IntensityInfo, 'method' | 'quantiles'> | null | undefined): string {
  return info
    ? createHash('sha256')
        .update(JSON.stringify(intensityIdentity(info)))
        .digest('hex')
        .slice(0, 16)
    : 'none';
}
