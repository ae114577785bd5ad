/** One mini-batch, NHWC with one channel, row-major. */
export interface Batch {
  /** n * size * size image values in [0,1] */
  x: Float32Array;
  /** classifier: n labels (0/1); segmenter: n * size * size mask values (0/1) */
  y: Float32Array;
  n: number;
  /** sample identifiers, in batch order (for per-image reports) */
  ids?: string[];
  /** seed of this training pass's dropout masks (set by the training loop) */
  seed?: number;
}

/**
 * Where the training loop gets its data. A source decides its own order and augmentation
 * for an epoch (deterministic for its seed and the epoch number, so a resumed run sees the
 * same stream), and may load lazily from disk.
 */
export interface BatchSource {
  /** images in one pass */
  readonly size: number;
  batches(epoch: number, batchSize: number): AsyncIterable<Batch>;
}

export type Task = 'segmenter' | 'classifier';

export interface TrainData {
  train: BatchSource;
  validation: BatchSource;
  test?: BatchSource;
  /** labels of the train split, for balanced class weights (classifier only) */
  trainLabels?: ArrayLike<number>;
  /**
   * classifier: the source (dataset) of each validation image, in the validation source's
   * order; with more than one, the epoch's metric is the mean of the per-source AUCs, so the
   * checkpoint is not chosen by the largest set alone
   */
  validationGroups?: readonly string[];
  /** the source of each test image, for per-set test figures */
  testGroups?: readonly string[];
}

/** One line of runs/<id>/metrics.jsonl. */
export interface EpochRecord {
  epoch: number;
  /** optimizer steps taken by the end of this epoch */
  step: number;
  lr: number;
  trainLoss: number;
  l2Penalty: number;
  valLoss: number;
  /** classifier: validation AUC (null with one class); segmenter: mean validation Dice */
  valMetric: number | null;
  valMetricName: 'auc' | 'dice';
  valIou?: number | null;
  /** classifier with several validation sources: AUC per source (the metric is their mean) */
  valBySource?: Record<string, number | null>;
  best: boolean;
  trainImages: number;
  seconds: number;
  imagesPerSecond: number;
  /** tf.memory() after the epoch, with every temporary disposed: flat across epochs */
  tensors: number;
  bytes: number;
  time: string;
}
