/**
 * What was decoded, step by step. Ingestion promises one parse per posted file and one pixel
 * decode per purpose (the acceptance check, then scoring), never a modality array thrown away;
 * an observer (a test, a metric) sees every step, so that promise can be checked on the real
 * path. Without observers a step costs one empty-set check.
 */
export type DecodeStep =
  /** a Part 10 parse: file meta and dataset, no pixels */
  | 'parse'
  /** the frame's stored words: native ones located, compressed ones decoded */
  | 'pixels'
  /** a full array of modality values (Rescale/Modality LUT applied) */
  | 'modality';

type Observer = (step: DecodeStep) => void;

const observers = new Set<Observer>();

/** Calls `fn` on every decode step in this process until the returned function is called. */
export function observeDecoding(fn: Observer): () => void {
  observers.add(fn);
  return () => {
    observers.delete(fn);
  };
}

export function noteDecode(step: DecodeStep): void {
  if (observers.size === 0) return;
  for (const fn of observers) fn(step);
}
