/**
 * The model card of a version (MODEL_CARD.md), as pure functions of what the version folder
 * records: the manifest, the evaluations saved beside it (`evaluate --save`), the datasets'
 * attributions and the notes a person wrote (card/notes.json). Nothing here reads files or
 * measures anything, so the same inputs always give the same text (`cxr-triage models card`
 * gathers the inputs; test/ml/model-card.test.ts checks the text).
 */
import { mostSensitivePopulation } from './calibrate.js';
import { formatPortablePath, servedCalibration, type CalibrationInfo, type ModelManifest, type PortablePath, type ThresholdInfo } from './model-store/index.js';
import type { SetReport } from './robustness.js';

/** One set's figures on one subset, at the served threshold. */
export interface CardFigures {
  /** dataset name (folder base name), or 'pooled' */
  set: string;
  subset: string;
  n: number;
  positives: number;
  auc: number | null;
  accuracy: number | null;
  recall: number | null;
  specificity: number | null;
  ece: number | null;
  threshold: number;
  /**
   * the specificity at the highest cut that keeps the target recall on this row's own films (the
   * issue's "specificity at recall 0.95"): how good the ranking is where a recall-first threshold
   * sits, whatever threshold the version serves; absent where no per-image scores were saved
   */
  specificityAtTarget?: number | null;
  /** 95% bootstrap intervals, flattened (aucLo, aucHi, recallLo, ...) */
  ci95: Record<string, number>;
  /** how the figures were produced, e.g. 'evaluate (served pipeline), 2026-12-01' */
  how: string;
}

export interface DatasetAttribution {
  name: string;
  /** the README's title line */
  title: string;
  /** the README's terms and citation paragraph */
  terms: string;
}

export interface FailureMode {
  title: string;
  detail: string;
  /** pictures relative to the version folder */
  pictures?: string[];
}

/** What a person adds to a card (card/notes.json): each list replaces the default for its section. */
export interface CardNotes {
  intendedUse?: string[];
  notForUse?: string[];
  failureModes?: FailureMode[];
  /** free text under the title */
  summary?: string;
}

export interface ModelCardInput {
  manifest: ModelManifest;
  /** manifestDigest(manifest) */
  digest: string;
  figures: CardFigures[];
  datasets: DatasetAttribution[];
  notes: CardNotes;
  /** failure-mode pictures found in card/ (relative paths), shown under "Known failure modes" */
  pictures: string[];
  /** size of the version folder's shipped files (the manifest's files plus manifest.json) */
  folderBytes: number;
  /** `robustness --save` results, as `cardRobustness` picks them */
  robustness?: readonly SavedRobustness[];
}

/** One saved `robustness` run's set, as the card shows it. */
export interface SavedRobustness {
  subset: string | null;
  set: SetReport;
}

/**
 * The saved robustness runs the card shows: per set and subset, the run that tried the most
 * shifts, the newest of those. A later run of one or two shifts (checking a fix, say) does not
 * hide the whole table; a later run of them all replaces it. `saved` is in the order saved.
 */
export function cardRobustness(saved: readonly SavedRobustness[]): SavedRobustness[] {
  const chosen = new Map<string, SavedRobustness>();
  for (const run of saved) {
    const key = `${run.set.set}|${run.subset ?? ''}`;
    const held = chosen.get(key);
    if (!held || run.set.shifts.length >= held.set.shifts.length) chosen.set(key, run);
  }
  return [...chosen.values()];
}

/** Per 100 studies at a prevalence, the flagged ones, and of them the true and false alarms, and the missed. */
export interface Per100 {
  flagged: number;
  truePositives: number;
  falseAlarms: number;
  missed: number;
}

export function per100(prevalence: number, recall: number, specificity: number): Per100 {
  const truePositives = 100 * prevalence * recall;
  const falseAlarms = 100 * (1 - prevalence) * (1 - specificity);
  return { flagged: truePositives + falseAlarms, truePositives, falseAlarms, missed: 100 * prevalence - truePositives };
}

/** The decision rule the service applies to this version by default: the int8 model's own when int8 is served. */
export function servedThreshold(m: ModelManifest): { precision: 'int8' | 'float'; threshold: ThresholdInfo | null } {
  if (m.quantization?.served && m.quantization.threshold) return { precision: 'int8', threshold: m.quantization.threshold };
  return { precision: 'float', threshold: m.threshold };
}

/**
 * The title line (first `# ` heading) and the paragraph that starts with "Terms:" of a
 * dataset folder's README, which is where the data sets here state their licence and
 * citation. Null when the README has no such paragraph.
 */
export function attributionFromReadme(name: string, readme: string): DatasetAttribution | null {
  const lines = readme.split(/\r?\n/);
  const title = (lines.find((l) => l.startsWith('# ')) ?? `# ${name}`).slice(2).trim();
  const start = lines.findIndex((l) => /^Terms:/.test(l.trim()));
  if (start < 0) return null;
  const para: string[] = [];
  for (let i = start; i < lines.length && lines[i].trim() !== ''; i++) para.push(lines[i].trim());
  return { name, title, terms: para.join(' ') };
}

const f3 = (v: number | null | undefined): string => (v == null ? 'n/a' : v.toFixed(3));
const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;
const one = (v: number): string => v.toFixed(1);

/** `0.874 (0.806-0.935)`: a figure and its 95% interval when there is one. */
export function figureWithInterval(value: number | null, ci: Record<string, number>, key: string): string {
  const lo = ci[`${key}Lo`];
  const hi = ci[`${key}Hi`];
  return value == null || lo === undefined || hi === undefined ? f3(value) : `${f3(value)} (${f3(lo)}-${f3(hi)})`;
}

/**
 * One card row from a stored metrics record (a manifest's metrics, one set of a pool, or a saved
 * evaluation's summary); `threshold` and `ci95` override what the record holds.
 */
export function cardFigures(
  v: Record<string, unknown>,
  o: { set: string; subset: string; how: string; threshold?: number; ci95?: Record<string, number> },
): CardFigures {
  const c = v.confusion as { tp: number; fn: number } | undefined;
  const num = (k: string) => (typeof v[k] === 'number' ? (v[k] as number) : null);
  return {
    set: o.set,
    subset: o.subset,
    n: Number(v.n),
    positives: c ? c.tp + c.fn : 0,
    auc: num('auc'),
    accuracy: num('accuracy'),
    recall: num('recall'),
    specificity: num('specificity'),
    ece: num('ece'),
    threshold: o.threshold ?? num('threshold') ?? 0,
    ci95: o.ci95 ?? (v.ci95 as Record<string, number> | undefined) ?? {},
    how: o.how,
  };
}

/** Figures a refit-head or pooled training run stored per set in the manifest (metrics.sets). */
export function figuresFromManifest(m: ModelManifest, how: string): CardFigures[] {
  const out: CardFigures[] = [];
  for (const [set, bySubset] of Object.entries(m.metrics.sets ?? {})) {
    for (const subset of ['validation', 'test'] as const) {
      const v = bySubset[subset] as Record<string, unknown>;
      if (!v || typeof v.n !== 'number') continue;
      out.push(cardFigures(v, { set, subset, how }));
    }
  }
  return out;
}

/**
 * The validation and test figures training stored (manifest metrics.validation/test: one set,
 * scored the way training scores, no intervals), for a version with nothing better.
 */
export function figuresFromTraining(m: ModelManifest, how: string): CardFigures[] {
  const t = m.training.data;
  const set = (typeof t === 'string' ? t : t.path).split('/').pop() ?? 'data';
  const out: CardFigures[] = [];
  for (const subset of ['validation', 'test'] as const) {
    const v = m.metrics[subset] as Record<string, unknown>;
    if (!v || typeof v.n !== 'number' || typeof v.auc !== 'number' || !v.confusion) continue;
    out.push(cardFigures(v, { set, subset, how, ci95: {} }));
  }
  return out;
}

/**
 * Failure modes the figures themselves show: a set ranked no better than chance, normal
 * films flagged more often than not, pneumonias missed beyond the recall target. Each
 * statement names its set, subset and numbers, so a reader can check it in the table.
 */
export function failuresFromFigures(figures: readonly CardFigures[], targetRecall: number | null): FailureMode[] {
  const out: FailureMode[] = [];
  for (const f of figures) {
    const where = `${f.set} ${f.subset} (n ${f.n})`;
    const aucHi = f.ci95.aucHi;
    if (f.auc != null && (aucHi !== undefined ? aucHi < 0.5 : f.auc < 0.5)) {
      out.push({
        title: `Ranks ${f.set} films worse than chance`,
        detail: `AUC ${figureWithInterval(f.auc, f.ci95, 'auc')} on ${where}: its scores carry no usable signal there.`,
      });
    } else if (f.auc != null && f.auc < 0.7) {
      out.push({ title: `Weak ranking on ${f.set} films`, detail: `AUC ${figureWithInterval(f.auc, f.ci95, 'auc')} on ${where}.` });
    }
    if (f.specificity != null && f.specificity < 0.5) {
      out.push({
        title: `Flags most normal ${f.set} films`,
        detail: `specificity ${figureWithInterval(f.specificity, f.ci95, 'specificity')} on ${where}: about ${Math.round(100 * (1 - f.specificity))} of 100 normal films are flagged.`,
      });
    }
    if (targetRecall != null && f.recall != null && f.recall < targetRecall - 0.05) {
      out.push({
        title: `Misses pneumonias on ${f.set} films`,
        detail: `recall ${figureWithInterval(f.recall, f.ci95, 'recall')} on ${where}, below the ${targetRecall} it was calibrated for: about ${Math.round(100 * (1 - f.recall))} of 100 pneumonias are not flagged.`,
      });
    }
  }
  return out;
}

const signed3 = (v: number): string => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(3)}`;
const withChange = (v: number | null, base: number | null): string =>
  v == null ? 'n/a' : base == null || v === base ? f3(v) : `${f3(v)} (${signed3(v - base)})`;

/** Each saved robustness run as a table: the films as they are, then every shift, at the shipped threshold. */
export function shiftsSection(runs: readonly SavedRobustness[]): string[] {
  const out = [
    "`cxr-triage robustness` scored the same films as they are and changed as another site's films may be (a lighter or darker look-up curve, contrast, blur, compression, noise, rotation, framing, resolution), each decided at the threshold the version ships. A site whose films resemble a row can expect its operating point to move as that row shows.",
    '',
  ];
  for (const { subset, set: s } of runs) {
    out.push(`**${s.set}${subset ? ` ${subset}` : ''}** (${s.asIs.n} films, ${s.pneumonia} pneumonia; threshold ${s.threshold.toFixed(4)}):`, '');
    out.push('| films | AUC | recall | specificity | flagged | decisions changed (new false alarms / new misses) |', '| --- | --- | --- | --- | --- | --- |');
    out.push(`| as they are | ${f3(s.asIs.auc)} | ${f3(s.asIs.recall)} | ${f3(s.asIs.specificity)} | ${f3(s.asIs.flaggedShare)} | |`);
    for (const { shift, emulates, figures: f } of s.shifts)
      out.push(
        `| ${shift}: ${emulates} | ${withChange(f.auc, s.asIs.auc)} | ${withChange(f.recall, s.asIs.recall)} | ${withChange(f.specificity, s.asIs.specificity)} | ${f3(f.flaggedShare)} | ${f.changed} (${f.normalsNewlyFlagged} / ${f.pneumoniaNewlyMissed}) |`,
      );
    out.push('');
  }
  return out;
}

/** Specificity lost under a shift at or beyond this is a failure mode worth a line on the card. */
export const SHIFT_SPECIFICITY_DROP = 0.1;
/** Recall lost under a shift at or beyond this (and below the target) is one too: one film of 30 is not. */
export const SHIFT_RECALL_DROP = 0.05;

/**
 * The shifts that cost what a site would notice: recall falling by SHIFT_RECALL_DROP or more
 * and ending below the target (whether or not the films as they are reached it), or specificity falling by SHIFT_SPECIFICITY_DROP or more (many
 * more normal films flagged).
 */
export function failuresFromShifts(runs: readonly SavedRobustness[], targetRecall: number | null): FailureMode[] {
  const out: FailureMode[] = [];
  for (const { subset, set: s } of runs) {
    const where = `${s.set}${subset ? ` ${subset}` : ''} films`;
    for (const { shift, emulates, figures: f } of s.shifts) {
      const recallWas = s.asIs.recall;
      if (targetRecall != null && recallWas != null && f.recall != null && f.recall < targetRecall && recallWas - f.recall >= SHIFT_RECALL_DROP - 1e-12)
        out.push({
          title: `Misses pneumonias on ${where} under ${shift}`,
          detail: `${emulates}: recall ${f3(recallWas)} → ${f3(f.recall)} at the shipped threshold, ${f.pneumoniaNewlyMissed} of ${s.pneumonia} pneumonias newly missed.`,
        });
      const specWas = s.asIs.specificity;
      if (specWas != null && f.specificity != null && specWas - f.specificity >= SHIFT_SPECIFICITY_DROP - 1e-12)
        out.push({
          title: `Flags more normal ${where} under ${shift}`,
          detail: `${emulates}: specificity ${f3(specWas)} → ${f3(f.specificity)} at the shipped threshold, ${f.normalsNewlyFlagged} of ${s.asIs.n - s.pneumonia} normal films newly flagged.`,
        });
    }
  }
  return out;
}

const DEFAULT_INTENDED: Record<string, string[]> = {
  classifier: [
    'Research and demonstration of a triage worklist: frontal chest radiographs scored for pneumonia so that likely positives are read first.',
    'Every study is still read by a qualified reader; a "negative" only reorders the worklist.',
    'Sites validating it on their own films (`cxr-triage evaluate`, `calibrate`) before any use.',
  ],
  segmenter: [
    "Lung fields of frontal chest radiographs, to crop the classifier's input and to draw the outline a reviewer checks.",
    'Quality control of the crop (lung-area limits) in the triage pipeline.',
  ],
};

const DEFAULT_NOT_FOR: Record<string, string[]> = {
  classifier: [
    'Diagnosis, or ruling pneumonia out: it is not a medical device and was not validated clinically.',
    'Lateral films, CT, non-chest images; films of populations or equipment unlike the data below without local validation.',
    'Any set whose row below shows an AUC near 0.5 or below: the score does not rank those films.',
  ],
  segmenter: ['Measuring lung volumes or any diagnosis from the mask.', 'Films where the outline has not been checked by eye (see the failure modes).'],
};

function dataSection(m: ModelManifest, datasets: readonly DatasetAttribution[]): string[] {
  const t = m.training;
  const rows: string[] = ['| set | images | train / validation / test | source |', '| --- | --- | --- | --- |'];
  const attribution = (name: string) => datasets.find((d) => d.name === name);
  if (t.datasets?.length) {
    for (const d of t.datasets)
      rows.push(`| ${d.name} | ${d.images} | ${d.train} / ${d.validation} / ${d.test} | ${d.data ? formatPortablePath(d.data) : 'n/a'} |`);
  } else {
    const where = typeof t.data === 'string' ? t.data : formatPortablePath(t.data as PortablePath);
    rows.push(`| ${where.split('/').pop()} | ${t.dataSize} | ${t.split.train} / ${t.split.validation} / ${t.split.test} | ${where} |`);
  }
  const out = [...rows, ''];
  if (t.split.file) out.push(`Split by patient (seed ${t.split.seed ?? 'n/a'}); the split is kept as \`${t.split.file}\` in this folder.`, '');
  if (t.initFrom?.version) out.push(`Weights started from ${t.initFrom.name ?? 'classifier'} ${t.initFrom.version}.`, '');
  if (t.maskSource) out.push(`Lung crops from: ${t.maskSource}.`, '');
  if (datasets.length > 0) {
    out.push("Attribution (from each data set's README):", '');
    for (const d of datasets) out.push(`- **${d.title}** (\`${d.name}\`): ${d.terms}`);
    out.push('');
  }
  const named = new Set(datasets.map((d) => d.name));
  const missing = (t.datasets ?? []).map((d) => d.name).filter((n) => !named.has(n) && !attribution(n));
  if (missing.length > 0) out.push(`No README was found for ${missing.join(', ')}: see the data folder for its terms.`, '');
  return out;
}

function figuresTable(figures: readonly CardFigures[], targetRecall: number): string[] {
  if (figures.length === 0) return ['No per-set evaluation is saved with this version (run `cxr-triage evaluate --save`).', ''];
  const rows = [
    `| set | subset | n (pneumonia) | AUC | recall | specificity | accuracy | ECE | threshold | specificity at recall ${targetRecall}, cut on these films | measured by |`,
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const f of figures) {
    rows.push(
      `| ${f.set} | ${f.subset} | ${f.n} (${f.positives}) | ${figureWithInterval(f.auc, f.ci95, 'auc')} | ${figureWithInterval(f.recall, f.ci95, 'recall')} | ` +
        `${figureWithInterval(f.specificity, f.ci95, 'specificity')} | ${figureWithInterval(f.accuracy, f.ci95, 'accuracy')} | ${f3(f.ece)} | ${f.threshold.toFixed(4)} | ` +
        `${f.specificityAtTarget == null ? '–' : f3(f.specificityAtTarget)} | ${f.how} |`,
    );
  }
  return [
    ...rows,
    '',
    'Intervals are 95% percentile bootstrap intervals over the images of each row (1000 seeded resamples): with a few dozen positives they are wide, and the point figure alone says little. ' +
      `The column before the last cuts each row's own films at the highest score that keeps recall ${targetRecall} there: it shows how well the films are ranked where a recall-first threshold sits, not what the served threshold does (– where no per-image scores were saved).`,
    '',
  ];
}

function thresholdSection(m: ModelManifest, figures: readonly CardFigures[]): string[] {
  const { precision, threshold } = servedThreshold(m);
  if (!threshold) return ["No decision threshold: the segmenter's masks are cut at 0.5.", ''];
  const out: string[] = [];
  const on = threshold.calibratedOn;
  out.push(
    `A study is flagged when its probability is at least **${threshold.value.toFixed(4)}** (${precision} model, ${servedCalibration(m, precision) ? 'after its probability calibration' : 'on its raw probabilities'}), ` +
      `chosen for recall ${threshold.targetRecall} on ${on ? `${on.n} ${on.subset} images (${on.views} views, ${on.scorer})` : 'the validation split'}: ` +
      `validation recall ${f3(threshold.validationSensitivity)}, specificity ${f3(threshold.validationSpecificity)}.`,
    '',
  );
  const pops = Object.entries(threshold.populations ?? {});
  if (pops.length) {
    const [, lowest] = mostSensitivePopulation(threshold, servedCalibration(m, precision))!;
    out.push(
      "**Per population** (the engine decides each study at its population's threshold, from the DICOM PatientAge, else PatientBirthDate with StudyDate: under 18 years pediatric; " +
        `a study of unknown age gets the lowest, ${lowest.value.toFixed(4)}, recall first; the pooled value above is what a reader of one number sees):`,
      '',
      '| population | sets | threshold | validation n (pneumonia) | validation recall | validation specificity |',
      '| --- | --- | --- | --- | --- | --- |',
      ...pops.map(
        ([k, p]) =>
          `| ${k} | ${p!.datasets.join(', ')} | ${p!.value.toFixed(4)} | ${p!.n} (${p!.positives}) | ${f3(p!.validationSensitivity)} | ${f3(p!.validationSpecificity)} |`,
      ),
      '',
    );
    for (const [k, p] of pops) for (const w of p!.warnings ?? []) out.push(`Warning (${k}): ${w}`, '');
    for (const [k, p] of pops) {
      const h = p!.head;
      if (!h) continue;
      const c = h.chosenOn;
      out.push(
        `**The ${k} population's own head** (\`fit-population-head\`): a study decided at the ${k} threshold is scored by a linear head on the version's features in place of the graph's, ` +
          `${f3(h.blend.joint)} x the version's recipe refitted on every set (${Object.entries(h.fittedOn.jointSets)
            .map(([s, w]) => `${s}:${w}`)
            .join(', ')}, L2 ${h.fittedOn.l2.joint}) + ${f3(h.blend.own)} x a head fitted on ${h.fittedOn.sets.join(', ')} alone (L2 ${h.fittedOn.l2.own}). ` +
          `Its threshold, its calibration and the blend were chosen on ${c.n} ${k} films (${c.positives} with pneumonia): the train films scored out of fold (${c.folds} folds of whole patients, logits averaged over ${c.deals} deals) and the validation films, ` +
          `so the recall and specificity in the ${k} row above are on those films. Blends tried there: ${c.tried
            .map((t) => `${f3(t.own)} own: AUC ${f3(t.auc)}, specificity ${f3(t.specificity)}`)
            .join('; ')}.`,
        '',
      );
    }
    const e = m.populationEstimator;
    if (e) {
      const v = e.validation;
      out.push(
        `**Age unknown**: this version estimates the population from the film (\`fit-population\`: a linear head on its own features, fitted on ${e.fittedOn.n} train films of ${Object.entries(
          e.fittedOn.sets,
        )
          .map(([s, p]) => `${s} (${p})`)
          .join(
            ', ',
          )}) and decides at the estimated population's threshold when the estimate is at least ${e.minConfidence}; below that, recall first as above. ` +
          `On ${v.n} validation films: accuracy ${f3(v.accuracy)}, ${v.decided} estimates at or above ${e.minConfidence}, ${v.decidedWrong} of them wrong` +
          ` (${Object.entries(v.perSet)
            .map(([s, f]) => `${s}: ${f.decided} of ${f.n} decided, ${f.decidedWrong} wrong`)
            .join('; ')}). Films of another hospital or age range were not part of it: the header's age is what to rely on.`,
        '',
      );
    }
  }
  const used = [threshold.value, ...pops.map(([, p]) => p!.value)];
  const rows = [
    '| at the validation prevalence of | flagged per 100 studies | with pneumonia | false alarms | pneumonias missed |',
    '| --- | --- | --- | --- | --- |',
  ];
  // only rows measured at a threshold the version applies say what it does
  const validation = figures.filter(
    (f) => f.subset === 'validation' && f.recall != null && f.specificity != null && f.n > 0 && used.some((t) => Math.abs(f.threshold - t) < 1e-9),
  );
  const pooledPositives = on?.positives ?? (typeof m.metrics.validation.n === 'number' ? positivesOf(m.metrics.validation) : null);
  if (on && pooledPositives != null && threshold.validationSpecificity != null && !validation.some((f) => f.set === 'pooled')) {
    const p = per100(pooledPositives / on.n, threshold.validationSensitivity, threshold.validationSpecificity);
    rows.push(
      `| ${on.subset} split as calibrated (${pooledPositives}/${on.n}, ${pct(pooledPositives / on.n)}) | ${one(p.flagged)} | ${one(p.truePositives)} | ${one(p.falseAlarms)} | ${one(p.missed)} |`,
    );
  }
  for (const f of validation) {
    const p = per100(f.positives / f.n, f.recall!, f.specificity!);
    rows.push(
      `| ${f.set} (${f.positives}/${f.n}, ${pct(f.positives / f.n)}) | ${one(p.flagged)} | ${one(p.truePositives)} | ${one(p.falseAlarms)} | ${one(p.missed)} |`,
    );
  }
  if (rows.length > 2)
    out.push(
      ...rows,
      '',
      'Per 100 studies = 100 x (prevalence x recall + (1 - prevalence) x (1 - specificity)); a site with another prevalence gets other numbers.',
      '',
    );
  const u = threshold.uncertainty;
  const flaggedPer100 = u ? Math.round((1 - u.quantile) * 100) : 0;
  out.push(
    u
      ? `A study whose TTA views disagree by a spread (standard deviation) above **${u.bound.toFixed(4)}** is marked uncertain and sent to a human: ` +
          `the ${Math.round(u.quantile * 100)}th percentile of the spreads on the same ${u.n} images (largest ${u.largest.toFixed(4)}), so about ${flaggedPer100} ${flaggedPer100 === 1 ? 'study' : 'studies'} in 100 like them.`
      : 'This version records no uncertainty bound: the engine applies its default to the TTA spread.',
    '',
  );
  for (const w of threshold.warnings ?? []) out.push(`Warning: ${w}`, '');
  return out;
}

function positivesOf(v: Record<string, unknown>): number | null {
  const c = v.confusion as { tp?: number; fn?: number } | undefined;
  return c && typeof c.tp === 'number' && typeof c.fn === 'number' ? c.tp + c.fn : null;
}

function calibrationSection(m: ModelManifest, figures: readonly CardFigures[]): string[] {
  if (m.name !== 'classifier') return [];
  const out: string[] = [];
  const { precision, threshold } = servedThreshold(m);
  const describe = (c: CalibrationInfo) =>
    `${c.method === 'platt' ? 'Platt scaling' : 'Temperature scaling'} p' = sigmoid(${c.a.toFixed(4)} logit(p) + ${c.b.toFixed(4)}), fitted on ${c.fittedOn.n} ${c.fittedOn.subset} images ` +
    `(${c.fittedOn.views} views): expected calibration error ${f3(c.eceBefore)} before, ${f3(c.eceAfter)} after (10 bins)`;
  const served = servedCalibration(m, precision);
  if (served) out.push(`${precision === 'int8' ? "The int8 model's own calibration: " : ''}${describe(served)}.`);
  else out.push(`No probability calibration${precision === 'int8' ? ' of the int8 model served' : ''}: the probability is the raw mean over the TTA views.`);
  for (const [k, p] of Object.entries(threshold?.populations ?? {}))
    if (p?.calibration) out.push(`Studies of the ${k} population are decided on its own: ${describe(p.calibration)}.`);
  if (precision === 'int8' && m.calibration)
    out.push(
      `model.onnx (served only when float is asked for) has its own: ${describe(m.calibration)}; the int8 model keeps its own threshold on its own probabilities.`,
    );
  const eces = figures.filter((f) => f.ece != null).map((f) => `${f.set} ${f.subset} ${f3(f.ece)}`);
  if (eces.length) out.push(`Expected calibration error (10 bins) of the served probabilities: ${eces.join('; ')}.`);
  return [...out, ''];
}

/** What a version folder should stay under, so that git keeps every version comfortably. */
export const MAX_VERSION_MB = 25;

function provenanceSection(m: ModelManifest, digest: string, folderBytes: number): string[] {
  const t = m.training;
  const out = [
    `- version ${m.name}@${m.version}, created ${m.createdAt}, manifest digest \`${digest}\``,
    `- architecture ${m.architecture}, input ${m.inputSize} px`,
    `- training data ${typeof t.data === 'string' ? t.data : formatPortablePath(t.data)} (${t.dataSize} images, data sha256 ${String(t.dataHash).slice(0, 16)}…), ${t.epochs} epochs${t.bestEpoch ? ` (best ${t.bestEpoch})` : ''}`,
  ];
  if (m.derivedFrom)
    out.push(`- derived from ${m.derivedFrom.name}@${m.derivedFrom.version} (${m.derivedFrom.reason}, digest \`${m.derivedFrom.digest.slice(0, 16)}…\`)`);
  if (t.initFrom?.version) out.push(`- initial weights ${t.initFrom.name ?? ''}@${t.initFrom.version}`);
  if (m.intensity) {
    const f = m.intensity.fittedOn;
    const film = m.intensity.method === 'film-quantile-match';
    out.push(
      `- lung crops quantile-matched${film ? " by their films' ranks" : ''} to an intensity reference (${m.intensity.quantiles.length} points: the mean quantile function of ${f.films} train ${film ? 'films' : 'crops'}, ${Object.entries(
        f.sets,
      )
        .map(([k, v]) => `${v} ${k}`)
        .join(', ')}${film ? '' : `, segmenter ${f.segmenter}`}), so the look-up curve, contrast and brightness of a film do not reach the network`,
    );
  }
  if (m.quantization)
    out.push(
      `- int8: ${m.quantization.format}, ${m.quantization.quantizedNodes} nodes quantized, served: ${m.quantization.served ? 'yes' : 'no'} (${m.quantization.decision ?? ''})`,
    );
  if (t.environment)
    out.push(`- code ${t.environment.gitCommit ?? 'unknown commit'}, node ${t.environment.node}, command \`${t.environment.command.join(' ')}\``);
  // decimal MB, as the limit is stated; the whole folder but this card (evaluations/ and card/ included)
  const mb = folderBytes / 1e6;
  out.push(
    `- version folder ${mb.toFixed(1)} MB without this card${mb > MAX_VERSION_MB ? ` (over the ${MAX_VERSION_MB} MB a version folder should stay under)` : ''}`,
  );
  return [...out, ''];
}

/** MODEL_CARD.md of a version. */
export function renderModelCard(input: ModelCardInput): string {
  const { manifest: m, figures, notes } = input;
  const kind = m.name === 'segmenter' ? 'segmenter' : 'classifier';
  const target = servedThreshold(m).threshold?.targetRecall ?? null;
  const shifted = input.robustness ?? [];
  const failures = [...failuresFromFigures(figures, target), ...failuresFromShifts(shifted, target), ...(notes.failureModes ?? [])];
  const lines: string[] = [
    `# Model card: ${m.name} ${m.version}`,
    '',
    `Generated by \`cxr-triage models card ${m.name}@${m.version}\` from manifest.json, the evaluations saved in evaluations/ and card/notes.json; edit those, not this file.`,
    '',
    '**Not for clinical use.**',
    '',
  ];
  if (notes.summary) lines.push(notes.summary, '');
  lines.push('## Intended use', '', ...(notes.intendedUse ?? DEFAULT_INTENDED[kind]).map((l) => `- ${l}`), '');
  lines.push('## Not for use', '', ...(notes.notForUse ?? DEFAULT_NOT_FOR[kind]).map((l) => `- ${l}`), '');
  lines.push('## Data', '', ...dataSection(m, input.datasets));
  lines.push('## Performance per set', '');
  if (kind === 'segmenter') {
    lines.push(`Training splits (${formatSplitFigure(m.metrics.validation)} validation, ${formatSplitFigure(m.metrics.test)} test).`, '');
  }
  if (kind === 'classifier' || figures.length > 0) lines.push(...figuresTable(figures, servedThreshold(m).threshold?.targetRecall ?? 0.95));
  if (kind === 'classifier') lines.push('## Calibration', '', ...calibrationSection(m, figures));
  lines.push('## Decision threshold', '', ...thresholdSection(m, figures));
  if (shifted.length > 0) lines.push('## Acquisition shifts', '', ...shiftsSection(shifted));
  lines.push('## Known failure modes', '');
  if (failures.length === 0 && input.pictures.length === 0) lines.push('None recorded.', '');
  for (const f of failures) {
    lines.push(`- **${f.title}.** ${f.detail}`);
    for (const p of f.pictures ?? []) lines.push(`  ![${f.title}](${p})`);
  }
  const shown = new Set(failures.flatMap((f) => f.pictures ?? []));
  const rest = input.pictures.filter((p) => !shown.has(p));
  if (failures.length > 0) lines.push('');
  for (const p of rest) lines.push(`![${p}](${p})`, '');
  lines.push('## Provenance', '', ...provenanceSection(m, input.digest, input.folderBytes));
  return `${lines
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

function formatSplitFigure(v: Record<string, unknown>): string {
  const n = typeof v.n === 'number' ? v.n : '?';
  if (typeof v.dice === 'number') return `Dice ${f3(v.dice)}, IoU ${f3(v.iou as number)} on ${n}`;
  return `AUC ${f3(v.auc as number)} on ${n}`;
}
