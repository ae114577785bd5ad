import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { readSplitFile, type SplitName } from '../data/split.js';
import { CxrError } from '../errors.js';
import { loadEngine, type EngineOptions, type ImageScore, type OnnxTriageEngine } from '../inference/engine.js';
import { loadServedModel } from '../inference/models.js';
import { networkInputSource } from '../inference/network-inputs.js';
import { itemsInSubset, loadSplitItems, recalibratedThreshold } from '../ml/calibrate.js';
import type { EvalItem } from '../ml/evaluate.js';
import { evenlySpread } from './score-items.js';
import { deriveVersion, intensityMatchOf, ONNX_FILE, readManifest, writeManifest, type ModelManifest, type ModelName } from '../ml/model-store/index.js';
import { decodeModel } from '../ml/onnx/quantize/proto.js';
import { calibrateThreshold, dice, rocAuc } from '../ml/metrics.js';
import { uncertaintyBound } from '../ml/uncertainty-bound.js';
import { quantizeOnnx, WEIGHT_QMAX, type CalibrationInput, type CalibrationMethod, type DataOp, type QuantizableOp } from '../ml/onnx/quantize/index.js';
import {
  INT8_FILE,
  MAX_AUC_LOSS,
  MIN_MASK_AGREEMENT,
  type PipelineFigures,
  type QuantizationComparison,
  type QuantizationInfo,
} from '../ml/onnx/quantize/info.js';
import { loadEvalItems } from '../ml/train/dataset-source.js';
import { ProgressBar } from '../ml/train/progress.js';

/** A labelled image set: a dataset folder, optionally narrowed to one subset of a split file. */
export interface ImageSet {
  /** one folder, or the folders of a pool (then splitPath is the pool's split) */
  dataDir: string | readonly string[];
  splitPath?: string;
  subset: SplitName;
}

export interface QuantizeVersionOptions {
  versionDir: string;
  calib: ImageSet;
  /** calibration images drawn evenly from the set (default 64) */
  maxImages?: number;
  method?: CalibrationMethod;
  percentile?: number;
  ops?: QuantizableOp[];
  /** weightless ops kept in uint8 (default DATA_OPS) */
  dataOps?: DataOp[];
  /** node-name prefixes the data ops are limited to (default: the whole graph) */
  dataScope?: string[];
  keepFloat?: string[];
  /** where float and int8 are compared (validation); null skips the comparison (never served then) */
  compare: ImageSet | null;
  /** serving engine settings for the comparison: models folder, the other network, threads */
  engine: Pick<EngineOptions, 'modelsDir' | 'segmenterDir' | 'classifierDir' | 'threads'>;
  tta?: number;
  /** recall the int8 classifier's threshold is picked for (default: the float threshold's) */
  targetRecall?: number;
  /** name of the new version (default: the next <version>-rN) */
  version?: string;
  /** leave model.onnx out of the new version (rebuilt from the tfjs weights when float is asked for) */
  dropFloat?: boolean;
  log?: (line: string) => void;
}

export interface QuantizeVersionResult {
  /** the quantized version (source unchanged) */
  source: { dir: string; version: string };
  /** the new version holding model.onnx, model.int8.onnx and the decision */
  dir: string;
  version: string;
  kind: ModelName;
  info: QuantizationInfo;
}

function kindOf(m: ModelManifest): ModelName {
  if (m.name === 'segmenter' || m.architecture.toLowerCase().includes('unet')) return 'segmenter';
  return 'classifier';
}

async function setItems(set: ImageSet): Promise<EvalItem[]> {
  const dirs = setDirs(set);
  if (!set.splitPath) return loadEvalItems(dirs);
  if (dirs.length > 1) return loadSplitItems(dirs, resolve(set.splitPath), set.subset);
  return itemsInSubset(await loadEvalItems(dirs), await readSplitFile(resolve(set.splitPath)), set.subset);
}

const setDirs = (s: ImageSet): string[] => (typeof s.dataDir === 'string' ? [s.dataDir] : [...s.dataDir]).map((d) => resolve(d));
const setName = (s: ImageSet) => [...setDirs(s).map((d) => basename(d)), ...(s.splitPath ? [`${basename(s.splitPath)}:${s.subset}`] : [])];

/**
 * Quantizes a model version's model.onnx to model.int8.onnx (static QDQ, calibrated on the
 * inputs the served pipeline feeds that network for `calib`'s images), compares float and
 * int8 through the served pipeline on `compare`, picks the int8 classifier's own threshold
 * there, and records all of it and the serving decision in the manifest's `quantization`.
 */
export async function quantizeVersion(o: QuantizeVersionOptions): Promise<QuantizeVersionResult> {
  const log = o.log ?? (() => {});
  const dir = resolve(o.versionDir);
  const manifest = await readManifest(dir);
  const kind = kindOf(manifest);
  const tta = o.tta ?? 4;
  const float = await loadServedModel(dir, kind, dir, 'float');

  // calibration inputs: what the served pipeline feeds this network for real images
  const calibItems = evenlySpread(await setItems(o.calib), o.maxImages ?? 64);
  if (calibItems.length === 0) throw new CxrError('E_BAD_DATASET', `no calibration images in ${setDirs(o.calib).join(', ')}`);
  const segDir = kind === 'segmenter' ? dir : o.engine.segmenterDir;
  const seg = kind === 'segmenter' ? float : await loadServedModel(o.engine.modelsDir ?? 'models', 'segmenter', segDir, 'float');
  const clsSize = kind === 'classifier' ? manifest.inputSize : 224;
  const source = await networkInputSource(
    seg.bytes,
    { segmenter: seg.manifest.inputSize, classifier: clsSize },
    {
      tta,
      threads: o.engine.threads,
      // a classifier's int8 ranges come from the crops it is fed: quantile-matched where it says so
      intensity: kind === 'classifier' ? intensityMatchOf(manifest.intensity) : null,
    },
  );
  const inputs: CalibrationInput[] = [];
  try {
    const bar = new ProgressBar(process.stderr, 'inputs', calibItems.length);
    for (const item of calibItems) {
      const x = await source.inputs(await item.image());
      inputs.push(kind === 'segmenter' ? x.segmenter : x.classifier);
      bar.tick(1);
    }
    bar.finish();
  } finally {
    await source.close();
  }
  log(`calibrating ${kind} ${manifest.version} on ${inputs.length} images (${o.method ?? 'minmax'})`);
  const bar = new ProgressBar(process.stderr, 'ranges', inputs.length * (o.method === 'percentile' ? 2 : 1));
  const q = await quantizeOnnx(float.bytes, inputs, {
    method: o.method,
    percentile: o.percentile,
    ops: o.ops,
    dataOps: o.dataOps,
    dataScope: o.dataScope,
    keepFloat: o.keepFloat,
    threads: o.engine.threads,
    onProgress: () => bar.tick(1),
  });
  bar.finish();
  log(
    `${q.plan.quantized.length} nodes in int8, ${q.plan.float.length} quantizable nodes kept in float, ${q.plan.data.length} Add/Concat in uint8, ` +
      `${q.foldedBatchNorms.length} batch norms folded into the next conv, ${q.halvedInitializers} float tensors stored as float16 (exact); ${float.bytes.length} -> ${q.bytes.length} bytes`,
  );

  const f = float;
  const derived = await deriveVersion(dir, {
    version: o.version,
    reason: 'quantize',
    // the source stays as it was; the new version holds both models and the decision
    change: async (stage, m) => {
      await writeFile(join(stage, INT8_FILE), q.bytes);
      // a source shipped int8 only (its float rebuilt from the weights above): the comparison
      // and the float record read model.onnx from the new folder; --drop-float removes it again
      if (!existsSync(join(stage, ONNX_FILE))) await writeFile(join(stage, ONNX_FILE), f.bytes);
      const { quantization: _previous, ...base } = m;
      const info: QuantizationInfo = {
        file: INT8_FILE,
        format: 'QDQ',
        weights: `int8 in ±${WEIGHT_QMAX} (7 bits, so that CPUs without VNNI do not saturate), symmetric, per output channel`,
        activations: 'uint8, asymmetric, per tensor',
        method: q.method,
        ...(q.method === 'percentile' ? { percentile: o.percentile ?? 99.99 } : {}),
        calibration: {
          images: calibItems.length,
          inputsPerImage: kind === 'classifier' ? tta : 1,
          data: setName(o.calib),
          subset: o.calib.splitPath ? o.calib.subset : null,
        },
        ops: [...new Set(q.plan.quantized.map((p) => p.op))],
        quantizedNodes: q.plan.quantized.length,
        dataOps: [...new Set(q.plan.data.map((p) => p.op))],
        ...(o.dataScope ? { dataScope: o.dataScope } : {}),
        dataNodes: q.plan.data.length,
        foldedBatchNorms: q.foldedBatchNorms.length,
        halvedInitializers: q.halvedInitializers,
        floatNodes: q.plan.float,
        bytes: { float: f.bytes.length, int8: q.bytes.length },
        comparison: null,
        served: false,
        decision: 'not compared with float: served only when asked for (--precision int8)',
        // provisional, so that the engine can load the int8 classifier for the comparison
        ...(kind === 'classifier' && manifest.threshold ? { threshold: manifest.threshold } : {}),
        quantizedAt: new Date().toISOString(),
      };
      if (o.compare) {
        await writeManifest(stage, { ...base, quantization: info });
        const comparison = await compare(o, kind, stage, tta, log);
        info.comparison = comparison.figures;
        if (kind === 'classifier' && comparison.int8Threshold) info.threshold = comparison.int8Threshold;
        Object.assign(info, decide(kind, comparison.figures));
      }
      info.float = await floatRecord(stage, kind, f.bytes, Boolean(o.dropFloat), log);
      return { ...base, quantization: info };
    },
  });
  return {
    source: { dir, version: manifest.version },
    dir: derived.dir,
    version: derived.manifest.version,
    kind,
    info: derived.manifest.quantization!,
  };
}

/**
 * What the manifest says about model.onnx; with `drop`, removes it from the folder after
 * checking that the tfjs weights rebuild exactly these bytes (else it stays, with a warning).
 */
async function floatRecord(
  dir: string,
  kind: ModelName,
  bytes: Uint8Array,
  drop: boolean,
  log: (line: string) => void,
): Promise<NonNullable<QuantizationInfo['float']>> {
  const metadata = Object.fromEntries((decodeModel(bytes).metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const record = { file: ONNX_FILE, sha256, bytes: bytes.length, shipped: true, metadata };
  if (!drop) return record;
  const { exportOnnxBytes } = await import('../ml/onnx/model-version.js');
  const rebuilt = await exportOnnxBytes(dir, kind, metadata);
  if (createHash('sha256').update(rebuilt).digest('hex') !== sha256) {
    log(`warning: the tfjs weights do not rebuild model.onnx byte for byte (exporter changed since it was written?): model.onnx stays`);
    return record;
  }
  await rm(join(dir, ONNX_FILE));
  log(`model.onnx left out (${(bytes.length / 1e6).toFixed(1)} MB): float is rebuilt from the tfjs weights when asked for`);
  return { ...record, shipped: false };
}

async function compare(
  o: QuantizeVersionOptions,
  kind: ModelName,
  dir: string,
  tta: number,
  log: (line: string) => void,
): Promise<{ figures: QuantizationComparison; int8Threshold?: ReturnType<typeof recalibratedThreshold> }> {
  const set = o.compare!;
  const items = await setItems(set);
  const labels = items.map((i) => i.label);
  if (!labels.some((l) => l >= 0.5) || !labels.some((l) => l < 0.5)) {
    throw new CxrError('E_BAD_DATASET', `the comparison images (${setName(set).join(' ')}) need both normal and pneumonia films for an AUC`);
  }
  const other: ModelName = kind === 'segmenter' ? 'classifier' : 'segmenter';
  const base: EngineOptions = {
    ...o.engine,
    ...(kind === 'segmenter' ? { segmenterDir: dir } : { classifierDir: dir }),
    tta,
    onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
  };
  // the other network as the service would serve it; this one float, then int8
  const engines: OnnxTriageEngine[] = [];
  try {
    engines.push(await loadEngine({ ...base, precision: { [kind]: 'float' } }));
    engines.push(await loadEngine({ ...base, precision: { [kind]: 'int8' } }));
    const [ef, eq] = engines;
    const otherRef = ef.models[other];
    log(`comparing float and int8 on ${items.length} images (${setName(set).join(' ')}), ${other} ${otherRef.version} (${otherRef.precision ?? 'float'})`);
    const pf: number[] = [];
    const pq: number[] = [];
    const spreads: number[] = [];
    const dices: number[] = [];
    const bar = new ProgressBar(process.stderr, 'compare', items.length);
    for (const item of items) {
      const image = await item.image();
      const a: ImageScore = await ef.scoreImage(image);
      const b: ImageScore = await eq.scoreImage(image);
      pf.push(a.probability);
      pq.push(b.probability);
      spreads.push(b.spread);
      if (kind === 'segmenter') dices.push(dice(a.mask.data, b.mask.data));
      bar.tick(1);
    }
    bar.finish();
    const targetRecall = o.targetRecall ?? ef.threshold.targetRecall;
    const figures = (p: number[]): PipelineFigures => {
      const c = calibrateThreshold(p, labels, targetRecall);
      return { auc: rocAuc(p, labels), threshold: c.threshold, sensitivity: c.sensitivity, specificity: c.specificity };
    };
    const f = figures(pf);
    const q = figures(pq);
    let maxDiff = 0;
    let sumDiff = 0;
    for (let i = 0; i < pf.length; i++) {
      const d = Math.abs(pf[i] - pq[i]);
      maxDiff = Math.max(maxDiff, d);
      sumDiff += d;
    }
    const figuresOut: QuantizationComparison = {
      subset: set.splitPath ? set.subset : 'all',
      data: setName(set),
      n: items.length,
      views: tta,
      targetRecall,
      otherModel: { name: other, version: otherRef.version, precision: otherRef.precision ?? 'float' },
      float: f,
      int8: q,
      aucDelta: f.auc != null && q.auc != null ? q.auc - f.auc : null,
      probabilityDiff: { max: maxDiff, mean: sumDiff / pf.length },
      ...(kind === 'segmenter' ? { maskAgreement: { mean: dices.reduce((a, b) => a + b, 0) / dices.length, min: Math.min(...dices) } } : {}),
    };
    if (kind !== 'classifier') return { figures: figuresOut };
    const cal = calibrateThreshold(pq, labels, targetRecall);
    const uncertainty = uncertaintyBound(spreads);
    const int8Threshold = recalibratedThreshold(cal, {
      views: tta,
      scorer: 'onnxruntime int8',
      subset: figuresOut.subset,
      n: items.length,
      split: set.splitPath
        ? basename(set.splitPath)
        : setDirs(set)
            .map((d) => basename(d))
            .join('+'),
      at: new Date().toISOString(),
    });
    if (uncertainty) int8Threshold.uncertainty = uncertainty;
    return { figures: figuresOut, int8Threshold };
  } finally {
    for (const e of engines) await e.close();
  }
}

/** The serving rule, in words for the manifest. */
export function decide(kind: ModelName, c: QuantizationComparison): { served: boolean; decision: string } {
  const f4 = (v: number | null) => (v == null ? 'n/a' : v.toFixed(4));
  const auc = `validation AUC int8 ${f4(c.int8.auc)} vs float ${f4(c.float.auc)} (${c.n} images, ${c.views} views)`;
  if (c.aucDelta == null) return { served: false, decision: `float served: no AUC to compare (${auc})` };
  if (c.aucDelta < -MAX_AUC_LOSS) return { served: false, decision: `float served: ${auc} loses more than ${MAX_AUC_LOSS}` };
  if (kind === 'segmenter' && c.maskAgreement && c.maskAgreement.mean < MIN_MASK_AGREEMENT) {
    return { served: false, decision: `float served: int8 masks agree with float at mean Dice ${f4(c.maskAgreement.mean)} < ${MIN_MASK_AGREEMENT} (${auc})` };
  }
  const masks = c.maskAgreement ? `; masks agree at mean Dice ${f4(c.maskAgreement.mean)} (lowest ${f4(c.maskAgreement.min)})` : '';
  return { served: true, decision: `int8 served: ${auc}, within ${MAX_AUC_LOSS}${masks}` };
}
