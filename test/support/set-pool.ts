import { join } from 'node:path';
import { loadDatasets } from '../../src/data/multi-dataset.js';
import { splitBySet, writeSplit } from '../../src/data/split.js';
import { writeSynthDataset } from '../../src/data/synth-dataset.js';

/**
 * Small synthetic sets under `root` (one folder per name) and their pooled split, each set
 * split by patient on its own, written to `root`/run/split.csv: what refit-head and the
 * commands reading its caches work on.
 */
export async function writeSetPool(
  root: string,
  sets: readonly string[],
  o: { count: number; seed: number; fractions: [number, number, number] },
): Promise<void> {
  for (const [k, s] of sets.entries())
    await writeSynthDataset({ out: join(root, s), count: o.count, seed: o.seed + k, sizeMin: 96, sizeMax: 128, workSize: 96 });
  const pool = await loadDatasets(sets.map((s) => ({ dir: join(root, s) })));
  const split = splitBySet(
    pool.items.map((i) => ({ file: i.file, patientId: i.patientId, label: i.label, dataset: i.fields.source })),
    { seed: 1, fractions: o.fractions },
  );
  await writeSplit(join(root, 'run'), split);
}

/** refit-head's required arguments on that pool: every set (weight 1), its split, the models, and `out` when given (`--extract-only` needs none). */
export function poolRefitArgs(root: string, sets: readonly string[], models: { segmenter: string; classifier: string }, out?: string): string[] {
  return [
    'refit-head',
    ...sets.flatMap((s) => ['--data', `${join(root, s)}:1`]),
    '--split',
    join(root, 'run', 'split.csv'),
    '--classifier',
    models.classifier,
    '--segmenter',
    models.segmenter,
    ...(out === undefined ? [] : ['--out', out]),
  ];
}

/** `evaluate` of one set's validation films with a classifier version, 2 views, 1 thread, per-image rows written to `perImage`. */
export function poolEvaluateArgs(root: string, set: string, segmenter: string, classifier: string, perImage: string): string[] {
  return [
    'evaluate',
    '--data',
    join(root, set),
    '--split',
    join(classifier, 'split.csv'),
    '--subset',
    'validation',
    '--segmenter',
    segmenter,
    '--classifier',
    classifier,
    '--tta',
    '2',
    '--threads',
    '1',
    '--per-image',
    perImage,
  ];
}
