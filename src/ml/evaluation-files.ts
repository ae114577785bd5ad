/**
 * The files an evaluation leaves behind, written the same way by `evaluate` (--plots,
 * --per-image, --save) and by `train` into the new version's evaluations/training/ folder:
 * ROC and precision-recall curves (n, prevalence, model version, the no-skill line on PR, the
 * operating point in the legend, bootstrap bands), the reliability diagram, and one CSV row per
 * image.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { csvLine, parseCsv } from '../data/csv.js';
import { CxrError } from '../errors.js';
import { encodeRgbPng } from '../imaging/png.js';
import { bootstrapBand } from './bootstrap.js';
import { averagePrecision, operatingPoints, rocAuc } from './metrics.js';
import { precisionRecallPlot, reliabilityPlot, rocPlot } from './plots.js';
import { calibrationReport, type CalibrationReport } from './probability-calibration.js';

export const PLOT_FILES = ['roc.png', 'pr.png', 'reliability.png'] as const;

export interface ScoredImages {
  scores: readonly number[];
  labels: readonly number[];
  /** the decision threshold: the operating point marked on both curves */
  threshold: number;
  /** the classifier version the scores came from (printed on the plots) */
  version: string;
  /** the reliability bins, when the caller has them already */
  calibration?: CalibrationReport;
}

/** Writes roc.png, pr.png and reliability.png into dir; returns their paths. */
export async function writeCurvePlots(dir: string, s: ScoredImages): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const { scores, labels } = s;
  const pts = operatingPoints(scores, labels);
  const positives = labels.filter((l) => l >= 0.5).length;
  const ctx = (kind: 'roc' | 'pr') => ({
    n: labels.length,
    prevalence: positives / Math.max(1, labels.length),
    version: s.version,
    band: positives > 0 && positives < labels.length ? bootstrapBand(scores, labels, kind, { samples: 200, seed: 1 }) : null,
  });
  const images = {
    'roc.png': rocPlot(pts, rocAuc(scores, labels), s.threshold, ctx('roc')),
    'pr.png': precisionRecallPlot(pts, averagePrecision(scores, labels), s.threshold, ctx('pr')),
    'reliability.png': reliabilityPlot(s.calibration ?? calibrationReport(scores, labels)),
  };
  const files: string[] = [];
  for (const name of PLOT_FILES) {
    const img = images[name];
    const path = join(dir, name);
    await writeFile(path, await encodeRgbPng(img.data, img.width, img.height));
    files.push(path);
  }
  return files;
}

export interface ImageRow {
  id: string;
  label: number;
  probability: number;
  /** the probability before the version's calibration (what a calibration is fitted on), when the scorer gave it */
  rawProbability?: number;
  /** the split the image belongs to (train output lists validation and test together) */
  split?: string;
  /** the TTA spread, when the scorer reported it (what a threshold block's uncertainty bound is set on) */
  spread?: number;
  /** the lung mask's share of the segmenter frame, when the scorer reported it (a drift reference counts it) */
  lungAreaFraction?: number;
  dice?: number;
  /** the threshold this image was decided at, when the scorer decided it at its own population's */
  threshold?: number;
}

/**
 * One row per image: file, [split,] label (normal|pneumonia, as in labels.csv), probability and
 * the decision at the threshold (the image's own where the scorer decided it at its population's), with the manifest's rule (positive at or above it), the rule
 * the confusion matrix counts by and `analyze` decides by; [raw_probability] where the scorer
 * gave the probability before calibration; [spread] where it gave the TTA spread; [lung_area]
 * where it gave the lung area fraction; [dice] where masks were scored.
 */
export function perImageCsv(images: readonly ImageRow[], threshold: number): string {
  const hasSplit = images.some((i) => i.split !== undefined);
  const hasRaw = images.some((i) => i.rawProbability !== undefined);
  const hasSpread = images.some((i) => i.spread !== undefined);
  const hasArea = images.some((i) => i.lungAreaFraction !== undefined);
  const hasDice = images.some((i) => i.dice !== undefined);
  const head = [
    'file',
    ...(hasSplit ? ['split'] : []),
    'label',
    'probability',
    'decision',
    ...(hasRaw ? ['raw_probability'] : []),
    ...(hasSpread ? ['spread'] : []),
    ...(hasArea ? ['lung_area'] : []),
    ...(hasDice ? ['dice'] : []),
  ];
  const rows = images.map((i) => {
    const decision = i.probability >= (i.threshold ?? threshold) ? 'positive' : 'negative';
    const label = i.label >= 0.5 ? 'pneumonia' : 'normal';
    return csvLine([
      i.id,
      ...(hasSplit ? [i.split ?? ''] : []),
      label,
      String(i.probability),
      decision,
      ...(hasRaw ? [i.rawProbability === undefined ? '' : String(i.rawProbability)] : []),
      ...(hasSpread ? [i.spread === undefined ? '' : String(i.spread)] : []),
      ...(hasArea ? [i.lungAreaFraction === undefined ? '' : String(i.lungAreaFraction)] : []),
      ...(hasDice ? [i.dice === undefined ? '' : String(i.dice)] : []),
    ]);
  });
  return `${[csvLine(head), ...rows].join('\n')}\n`;
}

/** One row of a per-image CSV as read back: label 1 for pneumonia. */
export interface PerImageRow {
  file: string;
  label: number;
  probability: number;
  rawProbability?: number;
  spread?: number;
  lungAreaFraction?: number;
  /** the decision the evaluation made (at the threshold of the population it decided at), where the file has it */
  decision?: 'positive' | 'negative';
}

/** The rows of a per-image CSV (as perImageCsv writes it); raw_probability and spread where the file has them. */
export async function readPerImageCsv(path: string): Promise<PerImageRow[]> {
  const t = parseCsv(await readFile(path, 'utf8'), path);
  const [f, l, p, raw, s, area, d] = ['file', 'label', 'probability', 'raw_probability', 'spread', 'lung_area', 'decision'].map((c) => t.header.indexOf(c));
  const number = (fields: string[], k: number, line: number): number => {
    const v = Number(fields[k]);
    if (!Number.isFinite(v)) throw new CxrError('E_BAD_DATASET', `${path} line ${line}: ${t.header[k]} '${fields[k]}' is not a number`);
    return v;
  };
  // an optional column: absent from the file, or empty in a row, is undefined
  const optional = (fields: string[], k: number, line: number): number | undefined => (k >= 0 && fields[k] ? number(fields, k, line) : undefined);
  return t.rows.map((r) => {
    const rawProbability = optional(r.fields, raw, r.line);
    const spread = optional(r.fields, s, r.line);
    const lungAreaFraction = optional(r.fields, area, r.line);
    const decision = d >= 0 && (r.fields[d] === 'positive' || r.fields[d] === 'negative') ? r.fields[d] : undefined;
    return {
      file: r.fields[f],
      label: r.fields[l] === 'pneumonia' || r.fields[l] === '1' ? 1 : 0,
      probability: number(r.fields, p, r.line),
      ...(rawProbability !== undefined ? { rawProbability } : {}),
      ...(spread !== undefined ? { spread } : {}),
      ...(lungAreaFraction !== undefined ? { lungAreaFraction } : {}),
      ...(decision ? { decision } : {}),
    };
  });
}

/**
 * The films a model card pictures for one evaluation: the `n` normal films scored highest and
 * the `n` pneumonias scored lowest, each with what the evaluation decided for it ('FLAGGED' or
 * 'CLEARED' a normal film, 'CAUGHT' or 'MISSED' a pneumonia; '' without a decision column).
 * The scores are the evaluation's own, on the scale its (population's) threshold decided.
 */
export function picturedFilms(rows: readonly PerImageRow[], n = 3): (PerImageRow & { verdict: string })[] {
  const verdict = (r: PerImageRow): string => {
    if (!r.decision) return '';
    if (r.label === 1) return r.decision === 'positive' ? 'CAUGHT' : 'MISSED';
    return r.decision === 'positive' ? 'FLAGGED' : 'CLEARED';
  };
  const normals = rows
    .filter((r) => r.label === 0)
    .sort((a, b) => b.probability - a.probability)
    .slice(0, n);
  const pneumonias = rows
    .filter((r) => r.label === 1)
    .sort((a, b) => a.probability - b.probability)
    .slice(0, n);
  return [...normals, ...pneumonias].map((r) => ({ ...r, verdict: verdict(r) }));
}
