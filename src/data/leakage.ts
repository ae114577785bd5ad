/**
 * Leakage between splits: the images a model is measured on must not have trained it, nor
 * trained the model it was fine-tuned from. Compared by patient (a split is by patient) and
 * by file.
 */
import type { DatasetSplit, SplitName } from './split.js';

export interface Overlap {
  /** images of the measured subset whose patient is in the other split's train or validation rows */
  images: number;
  patients: number;
  /** of how many images in the measured subset */
  of: number;
}

/** How much of `measured`'s `subset` (default test) the `trainedOn` split used for training or validation. */
export function splitOverlap(measured: DatasetSplit, trainedOn: DatasetSplit, subset: SplitName = 'test'): Overlap {
  const seen = new Set(trainedOn.assignments.filter((a) => a.split !== 'test').map((a) => a.patientId));
  const seenFiles = new Set(trainedOn.assignments.filter((a) => a.split !== 'test').map((a) => a.file));
  const rows = measured.assignments.filter((a) => a.split === subset);
  const hit = rows.filter((a) => seen.has(a.patientId) || seenFiles.has(a.file));
  return { images: hit.length, patients: new Set(hit.map((a) => a.patientId)).size, of: rows.length };
}

/** Of `files`, those a split used for training or validation (e.g. images an evaluation scores). */
export function filesTrainedOn(files: readonly string[], split: DatasetSplit): string[] {
  const used = new Set(split.assignments.filter((a) => a.split !== 'test').map((a) => a.file));
  return files.filter((f) => used.has(f));
}
