/**
 * Gathers what a version's model card is made of (src/ml/model-card.ts renders it): the
 * manifest, the evaluations saved in evaluations/ (newest per set and subset), the datasets'
 * README attributions (cached in card/datasets.json so a card can be regenerated where the
 * data is absent), card/notes.json, and the failure-mode pictures in card/. With pictures
 * asked for, the most confident errors of each saved evaluation are drawn through the served
 * pipeline (lung outline and CAM heatmap) into card/errors-<set>-<subset>.png.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { picturedFilms, readPerImageCsv, type PerImageRow } from '../ml/evaluation-files.js';
import { TRAINING_EVALUATION } from '../ml/train/finalize.js';
import { CxrError } from '../errors.js';
import { encodeRgbPng } from '../imaging/png.js';
import { loadEngine, scoreOverlays } from '../inference/engine.js';
import { contactSheet, type FilmTile } from '../ml/contact-sheet.js';
import { setFigures } from '../ml/evaluate.js';
import { calibrateThreshold } from '../ml/metrics.js';
import {
  attributionFromReadme,
  cardFigures,
  figuresFromManifest,
  figuresFromTraining,
  renderModelCard,
  servedThreshold,
  type CardFigures,
  type CardNotes,
  type DatasetAttribution,
  type FailureMode,
  cardRobustness,
  type SavedRobustness,
} from '../ml/model-card.js';
import { ROBUSTNESS_FILE, type RobustnessReport } from '../ml/robustness.js';
import {
  CARD_DIR,
  EVALUATIONS_DIR,
  MODEL_CARD_FILE,
  manifestDigest,
  readManifest,
  resolvePortablePath,
  type ModelManifest,
  type PortablePath,
} from '../ml/model-store/index.js';
import { loadEvalItems } from '../ml/train/dataset-source.js';

interface SavedEvaluation {
  folder: string;
  summary: Record<string, unknown>;
  sets: string[];
  subset: string;
  dataDirs: string[];
}

const DATASETS_FILE = 'datasets.json';
const NOTES_FILE = 'notes.json';

async function readJson<T>(path: string): Promise<T | null> {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (e) {
    throw new CxrError('E_BAD_ARGUMENT', `${path} is not JSON: ${(e as Error).message}`);
  }
}

/**
 * Where a recorded data folder is here: a folder given by name (--data), the portable path,
 * or a folder of that name under the shared data root; null when none exists.
 */
function dataDirHere(p: PortablePath | string, given: readonly string[] = []): string | null {
  const name = basename(typeof p === 'string' ? p : p.path);
  const named = given.find((d) => basename(resolve(d)) === name);
  if (named && existsSync(named)) return resolve(named);
  if (typeof p !== 'string') {
    const at = resolvePortablePath(p);
    if (at && existsSync(at)) return at;
    const shared = resolvePortablePath({ root: 'shared', path: `data/${basename(p.path)}` });
    return shared && existsSync(shared) ? shared : null;
  }
  return existsSync(p) ? resolve(p) : null;
}

/** The saved evaluations, newest last (folder names start with their time). */
async function savedEvaluations(dir: string, given: readonly string[]): Promise<SavedEvaluation[]> {
  const root = join(dir, EVALUATIONS_DIR);
  if (!existsSync(root)) return [];
  const out: SavedEvaluation[] = [];
  for (const folder of (await readdir(root)).sort()) {
    // what `train` scored: the card shows it from the manifest's training metrics
    if (folder === TRAINING_EVALUATION) continue;
    const summary = await readJson<Record<string, unknown>>(join(root, folder, 'summary.json'));
    if (!summary) continue;
    const data = (summary.data as (PortablePath | string)[] | undefined) ?? [];
    const sets = (summary.datasets as string[] | undefined) ?? data.map((d) => basename(typeof d === 'string' ? d : d.path));
    out.push({
      folder: join(root, folder),
      summary,
      sets,
      subset: (summary.subset as string | null) ?? 'all',
      dataDirs: data.map((d) => dataDirHere(d, given)).filter((d): d is string => d != null),
    });
  }
  return out;
}

/** `robustness --save` runs in the order they were saved (folder names start with their time), as the card picks them. */
async function savedRobustness(dir: string): Promise<SavedRobustness[]> {
  const root = join(dir, EVALUATIONS_DIR);
  if (!existsSync(root)) return [];
  const saved: SavedRobustness[] = [];
  for (const folder of (await readdir(root)).sort()) {
    const report = await readJson<RobustnessReport>(join(root, folder, ROBUSTNESS_FILE));
    if (!report || !Array.isArray(report.sets)) continue;
    for (const set of report.sets) saved.push({ subset: report.subset, set });
  }
  return cardRobustness(saved);
}

async function perImage(folder: string): Promise<PerImageRow[]> {
  const path = join(folder, 'per-image.csv');
  if (!existsSync(path)) return [];
  return readPerImageCsv(path);
}

/** Card rows of one saved evaluation: per set of a pool, else one row; intervals from per-image.csv when the summary has none. */
async function evaluationFigures(e: SavedEvaluation, targetRecall: number): Promise<CardFigures[]> {
  const s = e.summary;
  const how = `evaluate (served pipeline), ${String(s.at ?? '').slice(0, 10)}`;
  const threshold = Number(s.threshold);
  const row = (set: string, v: Record<string, unknown>, ci95: Record<string, number>, specificityAtTarget?: number | null): CardFigures => ({
    ...cardFigures(v, { set, subset: e.subset, how, threshold, ci95 }),
    ...(specificityAtTarget !== undefined ? { specificityAtTarget } : {}),
  });
  const pooled = s.sets && typeof s.sets === 'object' && !Array.isArray(s.sets) ? (s.sets as Record<string, Record<string, unknown>>) : null;
  if (pooled) return Object.entries(pooled).map(([set, v]) => row(set, v, (v.ci95 as Record<string, number>) ?? {}));
  const rows = await perImage(e.folder);
  const scores = rows.map((r) => r.probability);
  const labels = rows.map((r) => r.label);
  let ci95 = s.ci95 as Record<string, number> | undefined;
  if (!ci95) ci95 = rows.length ? setFigures(scores, labels, threshold).ci95 : {};
  return [row(e.sets.join('+') || 'all', s, ci95, rows.length ? specificityAtRecall(scores, labels, targetRecall) : undefined)];
}

/** The specificity at the highest cut keeping `targetRecall` on these films; null without positives or negatives. */
function specificityAtRecall(scores: readonly number[], labels: readonly number[], targetRecall: number): number | null {
  if (!labels.some((l) => l >= 0.5) || !labels.some((l) => l < 0.5)) return null;
  return calibrateThreshold(scores, labels, targetRecall).specificity;
}

/** The newest evaluation per (sets, subset). */
function newest(evals: readonly SavedEvaluation[]): SavedEvaluation[] {
  const by = new Map<string, SavedEvaluation>();
  for (const e of evals) by.set(`${e.sets.join('+')}|${e.subset}`, e);
  return [...by.values()];
}

const pictureName = (set: string, subset: string) => `errors-${set}-${subset}.png`.replace(/[^A-Za-z0-9._+-]/g, '_');

/**
 * The three normal films scored highest and the three pneumonias scored lowest of an
 * evaluation (picturedFilms), each captioned with the evaluation's own probability and decision
 * (at its population's threshold), the overlays drawn through the served pipeline.
 */
async function drawScoreExtremes(e: SavedEvaluation, versionDir: string, segmenterDir: string, out: string): Promise<boolean> {
  const films = picturedFilms(await perImage(e.folder));
  if (films.length === 0 || e.dataDirs.length === 0) return false;
  const wanted = new Set(films.map((r) => r.file));
  const items = (await loadEvalItems(e.dataDirs, { pooled: e.dataDirs.length === 1 && films.some((r) => r.file.startsWith(`${e.sets[0]}/`)) })).filter((i) =>
    wanted.has(i.id),
  );
  if (items.length === 0) return false;
  const engine = await loadEngine({ classifierDir: versionDir, segmenterDir, threads: 1 });
  const tiles: FilmTile[] = [];
  try {
    for (const r of films) {
      const item = items.find((i) => i.id === r.file);
      if (!item) continue;
      const image = await item.image();
      const s = await engine.scoreImage(image);
      tiles.push({
        image,
        ...scoreOverlays(s, image.width, image.height),
        caption: [`${r.label ? 'PNEUMONIA' : 'NORMAL'} ${r.probability.toFixed(3)}`, r.verdict, basename(r.file).slice(0, 20)],
      });
    }
  } finally {
    await engine.close();
  }
  const sheet = contactSheet(tiles, { side: 112, columns: 3, title: `${e.sets.join('+')} ${e.subset} - TOP NORMALS, BOTTOM PNEUMONIAS` });
  await writeFile(out, await encodeRgbPng(sheet.data, sheet.width, sheet.height));
  return true;
}

export interface CardOptions {
  /** draw the error pictures (needs the data folders and a segmenter) */
  pictures?: boolean;
  segmenterDir?: string;
  /** data folders to look for by name before the recorded paths */
  dataDirs?: string[];
  log?: (line: string) => void;
}

/** The model card text of a version folder, and the attributions found (to cache in card/datasets.json). */
export async function buildModelCard(dir: string, opts: CardOptions = {}): Promise<{ text: string; datasets: DatasetAttribution[] }> {
  const m: ModelManifest = await readManifest(dir);
  const given = opts.dataDirs ?? [];
  const evals = newest(await savedEvaluations(dir, given));
  const measured: CardFigures[] = [];
  const targetRecall = servedThreshold(m).threshold?.targetRecall ?? 0.95;
  for (const e of evals) measured.push(...(await evaluationFigures(e, targetRecall)));
  // a set and subset measured by evaluate (through the served pipeline) is shown from that
  // measurement; the manifest's figures (a refit's, or a source version's kept by a derived
  // one) only where nothing was measured
  const seen = new Set(measured.map((f) => `${f.set}|${f.subset}`));
  const recorded = figuresFromManifest(
    m,
    m.derivedFrom ? `${m.derivedFrom.reason} source ${m.derivedFrom.version}: refit-head figures` : 'refit-head (served-pipeline features)',
  );
  const figures: CardFigures[] = [...recorded.filter((f) => !seen.has(`${f.set}|${f.subset}`)), ...measured];
  if (figures.length === 0) figures.push(...figuresFromTraining(m, 'training (single view, at the threshold training picked)'));

  // attributions: each data set's README where the data is here, else what an earlier card cached
  const cached = (await readJson<DatasetAttribution[]>(join(dir, CARD_DIR, DATASETS_FILE))) ?? [];
  const places = new Map<string, string | null>();
  for (const d of m.training.datasets ?? []) places.set(d.name, dataDirHere(d.data ?? d.name, given));
  if (!m.training.datasets?.length && m.training.data) {
    const p = m.training.data;
    places.set(basename(typeof p === 'string' ? p : p.path), dataDirHere(p, given));
  }
  for (const e of evals) e.sets.forEach((s, k) => places.set(s, places.get(s) ?? e.dataDirs[k] ?? null));
  const datasets: DatasetAttribution[] = [];
  for (const [name, at] of places) {
    const readme = at ? join(at, 'README.md') : null;
    const found = readme && existsSync(readme) ? attributionFromReadme(name, await readFile(readme, 'utf8')) : null;
    const a = found ?? cached.find((c) => c.name === name);
    if (a) datasets.push(a);
  }

  const notes = (await readJson<CardNotes>(join(dir, CARD_DIR, NOTES_FILE))) ?? {};
  if (notes.failureModes !== undefined && !Array.isArray(notes.failureModes))
    throw new CxrError('E_BAD_ARGUMENT', `${join(dir, CARD_DIR, NOTES_FILE)}: failureModes must be a list of {title, text} entries`);
  const failureModes: FailureMode[] = [...(notes.failureModes ?? [])];
  if (opts.pictures) {
    const seg = opts.segmenterDir;
    if (!seg) throw new CxrError('E_BAD_ARGUMENT', '--pictures needs a segmenter (--segmenter DIR or --models with one)');
    await mkdir(join(dir, CARD_DIR), { recursive: true });
    // one picture per set (its test evaluation when there is one): pictures weigh on the folder
    const bySet = new Map<string, SavedEvaluation>();
    for (const e of evals) if (!bySet.has(e.sets.join('+')) || e.subset === 'test') bySet.set(e.sets.join('+'), e);
    for (const e of bySet.values()) {
      const name = pictureName(e.sets.join('+'), e.subset);
      if (await drawScoreExtremes(e, dir, seg, join(dir, CARD_DIR, name))) opts.log?.(`drew ${CARD_DIR}/${name}`);
      else opts.log?.(`no pictures for ${e.sets.join('+')} ${e.subset}: its data folder is not here`);
    }
  }
  const pictures = existsSync(join(dir, CARD_DIR))
    ? (await readdir(join(dir, CARD_DIR)))
        .filter((f) => f.endsWith('.png'))
        .sort()
        .map((f) => `${CARD_DIR}/${f}`)
    : [];
  for (const e of evals) {
    const p = `${CARD_DIR}/${pictureName(e.sets.join('+'), e.subset)}`;
    if (pictures.includes(p))
      failureModes.push({
        title: `Highest-scored normal films and lowest-scored pneumonias on ${e.sets.join('+')} ${e.subset}`,
        detail:
          "the normal films this version scores highest (top row) and the pneumonias it scores lowest (bottom row), each with the evaluation's probability and what it decided (FLAGGED or CLEARED a normal film, CAUGHT or MISSED a pneumonia, at the threshold of the population it decided at), the lung outline and the CAM heatmap the served pipeline draws.",
        pictures: [p],
      });
  }
  const folderBytes = await bytesUnder(dir, (rel) => rel !== MODEL_CARD_FILE);
  const robustness = await savedRobustness(dir);
  const text = renderModelCard({
    manifest: m,
    digest: manifestDigest(m),
    figures,
    datasets,
    notes: { ...notes, failureModes },
    pictures,
    folderBytes,
    robustness,
  });
  return { text, datasets };
}

/** Bytes of every file under `dir` (recursively) whose path relative to it `keep` accepts. */
async function bytesUnder(dir: string, keep: (rel: string) => boolean, rel = ''): Promise<number> {
  let total = 0;
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) total += await bytesUnder(dir, keep, path);
    else if (e.isFile() && keep(path)) total += (await stat(join(dir, path))).size;
  }
  return total;
}

/** Writes MODEL_CARD.md (and card/datasets.json when attributions were found) into the version folder. */
export async function writeModelCard(dir: string, opts: CardOptions = {}): Promise<string> {
  const { text, datasets } = await buildModelCard(dir, opts);
  if (datasets.length > 0) {
    await mkdir(join(dir, CARD_DIR), { recursive: true });
    await writeFile(join(dir, CARD_DIR, DATASETS_FILE), `${JSON.stringify(datasets, null, 2)}\n`);
  }
  const path = join(dir, MODEL_CARD_FILE);
  await writeFile(path, text);
  return path;
}
