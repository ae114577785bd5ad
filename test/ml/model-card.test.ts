/**
 * The model card's text as pure functions: studies flagged per 100, attribution from a data
 * set's README, intervals, failure modes read off the figures, and the rendered card of a
 * constructed manifest, all against exact expected values. Plus the bootstrap intervals
 * evaluate, refit-head and the cards share.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapFigures } from '../../src/ml/bootstrap.js';
import {
  attributionFromReadme,
  cardRobustness,
  failuresFromFigures,
  failuresFromShifts,
  figureWithInterval,
  figuresFromManifest,
  per100,
  renderModelCard,
  servedThreshold,
  shiftsSection,
  type CardFigures,
  type SavedRobustness,
} from '../../src/ml/model-card.js';
import type { ModelManifest } from '../../src/ml/model-store/index.js';

test('per100 counts flagged studies, true and false alarms and misses per 100 at a prevalence', () => {
  assert.deepEqual(per100(0.25, 0.75, 0.5), { flagged: 56.25, truePositives: 18.75, falseAlarms: 37.5, missed: 6.25 });
  assert.deepEqual(per100(0.5, 1, 1), { flagged: 50, truePositives: 50, falseAlarms: 0, missed: 0 });
});

test("attributionFromReadme takes the title and the 'Terms:' paragraph", () => {
  const readme = [
    '# Pediatric films (4 images)',
    '',
    'Some text.',
    '',
    'Terms: CC BY 4.0. Cite: Someone et al.,',
    '"A paper", 2018.',
    'Never commit.',
    '',
    'Other.',
  ].join('\n');
  assert.deepEqual(attributionFromReadme('ped', readme), {
    name: 'ped',
    title: 'Pediatric films (4 images)',
    terms: 'Terms: CC BY 4.0. Cite: Someone et al., "A paper", 2018. Never commit.',
  });
  assert.equal(attributionFromReadme('x', '# No terms here\n\ntext\n'), null);
});

test('figureWithInterval prints the interval when there is one', () => {
  assert.equal(figureWithInterval(0.5, { aucLo: 0.25, aucHi: 0.75 }, 'auc'), '0.500 (0.250-0.750)');
  assert.equal(figureWithInterval(0.5, {}, 'auc'), '0.500');
  assert.equal(figureWithInterval(null, { aucLo: 0.25, aucHi: 0.75 }, 'auc'), 'n/a');
});

const fig = (over: Partial<CardFigures>): CardFigures => ({
  set: 'adult',
  subset: 'test',
  n: 100,
  positives: 50,
  auc: 0.9,
  accuracy: 0.8,
  recall: 0.96,
  specificity: 0.75,
  ece: 0.05,
  threshold: 0.25,
  ci95: {},
  how: 'evaluate',
  ...over,
});

test('failuresFromFigures names sets ranked worse than chance, normal films mostly flagged and recall short of the target', () => {
  const got = failuresFromFigures(
    [
      fig({}),
      fig({ set: 'child', auc: 0.3, ci95: { aucLo: 0.25, aucHi: 0.375 }, recall: 1, specificity: 0, specificityAtTarget: 0.12 }),
      fig({ set: 'other', auc: 0.625, recall: 0.75, specificity: 0.5 }),
    ],
    0.95,
  );
  assert.deepEqual(got, [
    { title: 'Ranks child films worse than chance', detail: 'AUC 0.300 (0.250-0.375) on child test (n 100): its scores carry no usable signal there.' },
    { title: 'Flags most normal child films', detail: 'specificity 0.000 on child test (n 100): about 100 of 100 normal films are flagged.' },
    { title: 'Weak ranking on other films', detail: 'AUC 0.625 on other test (n 100).' },
    {
      title: 'Misses pneumonias on other films',
      detail: 'recall 0.750 on other test (n 100), below the 0.95 it was calibrated for: about 25 of 100 pneumonias are not flagged.',
    },
  ]);
});

function manifest(over: Partial<ModelManifest> = {}): ModelManifest {
  return {
    name: 'classifier',
    version: 'v1',
    architecture: 'densenet121-se',
    architectureConfig: {},
    inputSize: 224,
    createdAt: '2026-12-01T00:00:00.000Z',
    training: {
      data: { root: 'shared', path: 'data/adult' },
      dataHash: 'ab'.repeat(32),
      dataSize: 200,
      config: {},
      epochs: 0,
      split: { train: 100, validation: 40, test: 60, seed: 1, file: 'split.csv' },
      datasets: [
        { name: 'adult', data: { root: 'shared', path: 'data/adult' }, images: 120, weight: 1, train: 60, validation: 20, test: 40 },
        { name: 'child', data: { root: 'shared', path: 'data/child' }, images: 80, weight: 1, train: 40, validation: 20, test: 20 },
      ],
    },
    metrics: {
      validation: { n: 40, confusion: { tp: 20, fn: 0, tn: 10, fp: 10 } },
      test: {},
      sets: {
        adult: {
          validation: {
            n: 20,
            auc: 0.875,
            recall: 1,
            specificity: 0.5,
            accuracy: 0.75,
            ece: 0.125,
            threshold: 0.25,
            confusion: { tp: 10, fn: 0, tn: 5, fp: 5 },
            ci95: { aucLo: 0.75, aucHi: 1 },
          },
          test: {},
        },
      },
    },
    threshold: {
      value: 0.25,
      targetRecall: 0.95,
      validationSensitivity: 1,
      validationSpecificity: 0.5,
      calibratedOn: { views: 4, scorer: 'onnxruntime', subset: 'validation', n: 40, split: 'split.csv', at: '2026-12-01T00:00:00.000Z', positives: 20 },
    },
    calibration: {
      method: 'platt',
      a: 1.5,
      b: -0.25,
      fittedOn: { views: 4, subset: 'validation', n: 40, split: 'split.csv', at: '2026-12-01T00:00:00.000Z' },
      eceBefore: 0.25,
      eceAfter: 0.0625,
    },
    files: { 'model.json': 'x', 'weights.bin': 'y' },
    ...over,
  } as ModelManifest;
}

test('figuresFromManifest reads the per-set figures a refit stored, skipping empty subsets', () => {
  assert.deepEqual(figuresFromManifest(manifest(), 'refit'), [
    {
      set: 'adult',
      subset: 'validation',
      n: 20,
      positives: 10,
      auc: 0.875,
      accuracy: 0.75,
      recall: 1,
      specificity: 0.5,
      ece: 0.125,
      threshold: 0.25,
      ci95: { aucLo: 0.75, aucHi: 1 },
      how: 'refit',
    },
  ]);
});

test('servedThreshold is the int8 model’s own when int8 is served', () => {
  const m = manifest();
  assert.equal(servedThreshold(m).precision, 'float');
  const q = { served: true, threshold: { ...m.threshold!, value: 0.5 } } as unknown as ModelManifest['quantization'];
  assert.deepEqual(servedThreshold({ ...m, quantization: q }), { precision: 'int8', threshold: { ...m.threshold!, value: 0.5 } });
});

test('renderModelCard writes each section with the exact figures, per-100 rows, attribution, failure modes with pictures and portable provenance', () => {
  const m = manifest();
  const text = renderModelCard({
    manifest: m,
    digest: 'd'.repeat(64),
    figures: [
      ...figuresFromManifest(m, 'refit'),
      fig({ set: 'child', auc: 0.3, ci95: { aucLo: 0.25, aucHi: 0.375 }, recall: 1, specificity: 0, specificityAtTarget: 0.12 }),
    ],
    datasets: [{ name: 'adult', title: 'Adult films', terms: 'Terms: cite A.' }],
    notes: { failureModes: [{ title: 'Apex protrusions', detail: 'the outline climbs into the neck.', pictures: ['card/apex.png'] }] },
    pictures: ['card/apex.png', 'card/other.png'],
    folderBytes: 30e6,
  });
  const lines = text.split('\n');
  const has = (line: string) => assert.ok(lines.includes(line), `missing line:\n${line}\nin:\n${text}`);
  has('# Model card: classifier v1');
  has('**Not for clinical use.**');
  has('| adult | 120 | 60 / 20 / 40 | {shared}/data/adult |');
  has('| child | 80 | 40 / 20 / 20 | {shared}/data/child |');
  has('- **Adult films** (`adult`): Terms: cite A.');
  // a figure without per-image scores shows '–' for the specificity at the target recall
  has('| adult | validation | 20 (10) | 0.875 (0.750-1.000) | 1.000 | 0.500 | 0.750 | 0.125 | 0.2500 | – | refit |');
  has('| child | test | 100 (50) | 0.300 (0.250-0.375) | 1.000 | 0.000 | 0.800 | 0.050 | 0.2500 | 0.120 | evaluate |');
  has(
    '| set | subset | n (pneumonia) | AUC | recall | specificity | accuracy | ECE | threshold | specificity at recall 0.95, cut on these films | measured by |',
  );
  has(
    "Platt scaling p' = sigmoid(1.5000 logit(p) + -0.2500), fitted on 40 validation images (4 views): expected calibration error 0.250 before, 0.063 after (10 bins).",
  );
  has(
    'A study is flagged when its probability is at least **0.2500** (float model, after its probability calibration), chosen for recall 0.95 on 40 validation images (4 views, onnxruntime): validation recall 1.000, specificity 0.500.',
  );
  has('| validation split as calibrated (20/40, 50.0%) | 75.0 | 50.0 | 25.0 | 0.0 |');
  has('This version records no uncertainty bound: the engine applies its default to the TTA spread.');
  has('| adult (10/20, 50.0%) | 75.0 | 50.0 | 25.0 | 0.0 |');
  has('- **Ranks child films worse than chance.** AUC 0.300 (0.250-0.375) on child test (n 100): its scores carry no usable signal there.');
  has('- **Apex protrusions.** the outline climbs into the neck.');
  has('  ![Apex protrusions](card/apex.png)');
  has('![card/other.png](card/other.png)');
  assert.ok(!lines.includes('![card/apex.png](card/apex.png)'), 'a picture shown with its failure mode is not shown twice');
  has(`- version classifier@v1, created 2026-12-01T00:00:00.000Z, manifest digest \`${'d'.repeat(64)}\``);
  has('- version folder 30.0 MB without this card (over the 25 MB a version folder should stay under)');
  assert.ok(!/\n\n\n/.test(text), 'no runs of blank lines');
  // an int8-served version with its own calibration names it, and model.onnx's as the float one's
  const int8Cal = { ...m.calibration!, a: 2, b: 0.5 };
  const int8 = manifest({
    quantization: { served: true, threshold: m.threshold!, probabilityCalibration: int8Cal } as unknown as ModelManifest['quantization'],
  });
  const int8Lines = renderModelCard({ manifest: int8, digest: 'd'.repeat(64), figures: [], datasets: [], notes: {}, pictures: [], folderBytes: 1e6 }).split(
    '\n',
  );
  for (const line of [
    "The int8 model's own calibration: Platt scaling p' = sigmoid(2.0000 logit(p) + 0.5000), fitted on 40 validation images (4 views): expected calibration error 0.250 before, 0.063 after (10 bins).",
    "model.onnx (served only when float is asked for) has its own: Platt scaling p' = sigmoid(1.5000 logit(p) + -0.2500), fitted on 40 validation images (4 views): expected calibration error 0.250 before, 0.063 after (10 bins); the int8 model keeps its own threshold on its own probabilities.",
  ])
    assert.ok(int8Lines.includes(line), `missing line:\n${line}`);
  assert.ok(int8Lines.some((l) => l.includes('(int8 model, after its probability calibration)')));
  // a version with a bound says what it is and where it came from
  const bounded = manifest({ threshold: { ...m.threshold!, uncertainty: { bound: 0.125, quantile: 0.99, n: 40, largest: 0.25 } } });
  assert.ok(
    renderModelCard({ manifest: bounded, digest: 'd'.repeat(64), figures: [], datasets: [], notes: {}, pictures: [], folderBytes: 1e6 })
      .split('\n')
      .includes(
        'A study whose TTA views disagree by a spread (standard deviation) above **0.1250** is marked uncertain and sent to a human: the 99th percentile of the spreads on the same 40 images (largest 0.2500), so about 1 study in 100 like them.',
      ),
  );
  assert.ok(text.endsWith('\n') && !text.endsWith('\n\n'));
});

test('renderModelCard says how a version with a population estimator decides a study of unknown age, with its validation figures', () => {
  const populations = {
    adult: { value: 0.2, validationSensitivity: 1, validationSpecificity: 0.4, n: 20, positives: 10, datasets: ['adult'] },
    pediatric: { value: 0.6, validationSensitivity: 0.95, validationSpecificity: 0.9, n: 20, positives: 10, datasets: ['child'] },
  };
  const base = manifest();
  const m = manifest({
    threshold: { ...base.threshold!, populations },
    populationEstimator: {
      above: 'pediatric',
      below: 'adult',
      inputs: 2,
      weights: 'AAAAAAAAAAA=',
      bias: 0,
      minConfidence: 0.99,
      featurePrecision: 'int8',
      fittedOn: { subset: 'train', n: 100, views: 4, l2: 0.01, sets: { adult: 'adult', child: 'pediatric' }, at: '2026-12-04T00:00:00.000Z' },
      validation: {
        n: 40,
        accuracy: 1,
        decided: 39,
        decidedWrong: 0,
        perSet: { adult: { n: 20, accuracy: 1, decided: 19, decidedWrong: 0 }, child: { n: 20, accuracy: 1, decided: 20, decidedWrong: 0 } },
      },
    },
  });
  const lines = renderModelCard({ manifest: m, digest: 'd'.repeat(64), figures: [], datasets: [], notes: {}, pictures: [], folderBytes: 1e6 }).split('\n');
  const line =
    "**Age unknown**: this version estimates the population from the film (`fit-population`: a linear head on its own features, fitted on 100 train films of adult (adult), child (pediatric)) and decides at the estimated population's threshold when the estimate is at least 0.99; below that, recall first as above. " +
    'On 40 validation films: accuracy 1.000, 39 estimates at or above 0.99, 0 of them wrong (adult: 19 of 20 decided, 0 wrong; child: 20 of 20 decided, 0 wrong). ' +
    "Films of another hospital or age range were not part of it: the header's age is what to rely on.";
  assert.ok(lines.includes(line), `missing line:\n${line}`);
});

test('bootstrapFigures: seeded and reproducible, degenerate intervals on a perfectly separated set, intervals holding the point figure', () => {
  const scores = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9];
  const labels = [0, 0, 0, 0, 1, 1, 1, 1];
  const ci = bootstrapFigures(scores, labels, 0.5);
  assert.deepEqual(ci, { aucLo: 1, aucHi: 1, accuracyLo: 1, accuracyHi: 1, recallLo: 1, recallHi: 1, specificityLo: 1, specificityHi: 1 });
  const noisy = [0.1, 0.7, 0.3, 0.4, 0.6, 0.2, 0.8, 0.9, 0.55, 0.45];
  const y = [0, 0, 0, 0, 1, 1, 1, 1, 0, 1];
  const a = bootstrapFigures(noisy, y, 0.5);
  assert.deepEqual(a, bootstrapFigures(noisy, y, 0.5));
  assert.notDeepEqual(a, bootstrapFigures(noisy, y, 0.5, { seed: 8 }));
  assert.ok(a.aucLo < 0.76 && 0.76 < a.aucHi, JSON.stringify(a));
  assert.ok(a.recallLo <= 0.8 && 0.8 <= a.recallHi, JSON.stringify(a));
  // one class only: no AUC, recall or specificity interval can exist, accuracy still can
  assert.deepEqual(Object.keys(bootstrapFigures([0.2, 0.8], [1, 1], 0.5)).sort(), ['accuracyHi', 'accuracyLo', 'recallHi', 'recallLo']);
});

/** One set's robustness run: 10 films (4 pneumonia) as they are at recall 1 / specificity 0.5, and two shifts. */
function shiftedRun(): SavedRobustness {
  const asIs = { n: 10, auc: 0.9, recall: 1, specificity: 0.5, accuracy: 0.7, flaggedShare: 0.7 };
  const base = { n: 10, accuracy: 0.6, meanAbsDelta: 0.05, meanDelta: 0.01 };
  return {
    subset: 'validation',
    set: {
      set: 'adults',
      pneumonia: 4,
      threshold: 0.2,
      asIs,
      shifts: [
        {
          shift: 'gamma-0.7',
          emulates: 'a lighter look-up curve',
          figures: { ...base, auc: 0.85, recall: 1, specificity: 1 / 3, flaggedShare: 0.8, changed: 1, normalsNewlyFlagged: 1, pneumoniaNewlyMissed: 0 },
        },
        {
          shift: 'rotate-10',
          emulates: 'a rotated patient',
          figures: { ...base, auc: 0.9, recall: 0.75, specificity: 0.5, flaggedShare: 0.6, changed: 1, normalsNewlyFlagged: 0, pneumoniaNewlyMissed: 1 },
        },
      ],
    },
  };
}

test('shiftsSection tabulates each shift against the films as they are, with the change of each figure', () => {
  const lines = shiftsSection([shiftedRun()]);
  assert.deepEqual(lines.slice(2), [
    '**adults validation** (10 films, 4 pneumonia; threshold 0.2000):',
    '',
    '| films | AUC | recall | specificity | flagged | decisions changed (new false alarms / new misses) |',
    '| --- | --- | --- | --- | --- | --- |',
    '| as they are | 0.900 | 1.000 | 0.500 | 0.700 | |',
    '| gamma-0.7: a lighter look-up curve | 0.850 (−0.050) | 1.000 | 0.333 (−0.167) | 0.800 | 1 (1 / 0) |',
    '| rotate-10: a rotated patient | 0.900 | 0.750 (−0.250) | 0.500 | 0.600 | 1 (0 / 1) |',
    '',
  ]);
});

test('failuresFromShifts names a shift that costs 0.05 recall or more and leaves it below the target and one that costs 0.1 specificity or more, and nothing else', () => {
  assert.deepEqual(failuresFromShifts([shiftedRun()], 0.95), [
    {
      title: 'Flags more normal adults validation films under gamma-0.7',
      detail: 'a lighter look-up curve: specificity 0.500 → 0.333 at the shipped threshold, 1 of 6 normal films newly flagged.',
    },
    {
      title: 'Misses pneumonias on adults validation films under rotate-10',
      detail: 'a rotated patient: recall 1.000 → 0.750 at the shipped threshold, 1 of 4 pneumonias newly missed.',
    },
  ]);
  // without a target recall only the specificity loss is named
  assert.equal(failuresFromShifts([shiftedRun()], null).length, 1);
  // one pneumonia of 30 (recall 0.967 -> 0.933) crosses the target but is not a failure mode
  const run = shiftedRun();
  run.set.asIs = { ...run.set.asIs, recall: 29 / 30 };
  run.set.shifts[1].figures = { ...run.set.shifts[1].figures, recall: 28 / 30 };
  assert.deepEqual(
    failuresFromShifts([run], 0.95).map((f) => f.title),
    ['Flags more normal adults validation films under gamma-0.7'],
  );
  // films already under the target as they are: a further loss of 0.05 or more is still named
  const under = shiftedRun();
  under.set.asIs = { ...under.set.asIs, recall: 0.93 };
  under.set.shifts[1].figures = { ...under.set.shifts[1].figures, recall: 0.85 };
  assert.deepEqual(
    failuresFromShifts([under], 0.95).map((f) => f.title),
    ['Flags more normal adults validation films under gamma-0.7', 'Misses pneumonias on adults validation films under rotate-10'],
  );
});

test('cardRobustness keeps per set and subset the newest of the runs that tried the most shifts: a later one-shift run does not hide the table, a later full run replaces it', () => {
  const full = shiftedRun();
  const one = (s: SavedRobustness): SavedRobustness => ({ ...s, set: { ...s.set, shifts: s.set.shifts.slice(1) } });
  const laterFull = { ...shiftedRun(), set: { ...shiftedRun().set, threshold: 0.3 } };
  const test = { ...shiftedRun(), subset: 'test' };
  const children = { ...shiftedRun(), set: { ...shiftedRun().set, set: 'children' } };
  assert.deepEqual(cardRobustness([full, one(full), test, children]), [full, test, children]);
  assert.deepEqual(cardRobustness([full, one(full), laterFull]), [laterFull]);
  assert.deepEqual(cardRobustness([one(full)]), [one(full)]);
  assert.deepEqual(cardRobustness([]), []);
});
