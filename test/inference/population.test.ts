/**
 * Per-population operating points: the age a study's DICOM header gives, the population it
 * falls in, and the threshold that population's study is decided at (the lowest for an
 * unknown age: recall first). Exact values throughout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ageBetween,
  chooseThreshold,
  parseAgeString,
  populationForDatasets,
  populationOfAge,
  populationProbability,
  studyAge,
} from '../../src/inference/population.js';
import { applyCalibration, fitCalibration, logit, sigmoid, uncalibrate } from '../../src/ml/probability-calibration.js';
import { fitPopulationCalibrations, parsePopulationMap, populationThresholds } from '../../src/ml/calibrate.js';
import { calibrateThreshold } from '../../src/ml/metrics.js';
import { CxrError } from '../../src/errors.js';
import type { ModelManifest, ThresholdInfo } from '../../src/ml/model-store/index.js';
import { servedFile } from '../../src/inference/precision.js';

test('an Age String (AS) is read in years for each unit; anything else is unknown', () => {
  assert.equal(parseAgeString('045Y'), 45);
  assert.equal(parseAgeString('018M'), 1.5);
  assert.equal(parseAgeString('052W'), (52 * 7) / 365.25);
  assert.equal(parseAgeString('010D'), 10 / 365.25);
  assert.equal(parseAgeString(' 7y '), 7);
  for (const bad of [null, undefined, '', 'Y', '45', '45 years', '0045Y', '12X']) assert.equal(parseAgeString(bad), null, String(bad));
});

test('age from birth and study dates counts completed years on the study day', () => {
  assert.equal(ageBetween('2010-06-15', '2028-06-14'), 17);
  assert.equal(ageBetween('2010-06-15', '2028-06-15'), 18);
  assert.equal(ageBetween('2010-06-15', '2010-06-15'), 0);
  assert.equal(ageBetween('2010-06-15', '2009-01-01'), null);
  assert.equal(ageBetween(null, '2028-06-15'), null);
  assert.equal(ageBetween('2010-06-15', null), null);
});

test('PatientAge comes first, then PatientBirthDate with StudyDate; under 18 is pediatric', () => {
  assert.deepEqual(studyAge({ patientAge: '017Y', patientBirthDate: '1950-01-01', studyDate: '2026-12-01' }), { years: 17, source: 'PatientAge' });
  assert.deepEqual(studyAge({ patientAge: 'junk', patientBirthDate: '2020-12-02', studyDate: '2026-12-01' }), { years: 5, source: 'PatientBirthDate' });
  assert.deepEqual(studyAge({ patientAge: null, patientBirthDate: null, studyDate: '2026-12-01' }), { years: null, source: null });
  assert.equal(populationOfAge(17.99), 'pediatric');
  assert.equal(populationOfAge(18), 'adult');
  assert.equal(populationOfAge(0), 'pediatric');
  assert.equal(populationOfAge(null), null);
});

const pooled: ThresholdInfo = { value: 0.4645, targetRecall: 0.95, validationSensitivity: 0.95, validationSpecificity: 0.52 };
const withPops: ThresholdInfo = {
  ...pooled,
  populations: {
    adult: { value: 0.277, validationSensitivity: 0.967, validationSpecificity: 0.4, n: 55, positives: 30, datasets: ['nih'] },
    pediatric: { value: 0.556, validationSensitivity: 0.95, validationSpecificity: 0.642, n: 476, positives: 342, datasets: ['kermany'] },
  },
};

test("a study is decided at its population's threshold; an unknown age gets the lowest, and a version without populations its one value", () => {
  const child = chooseThreshold(withPops, { patientAge: '007Y', studyDate: null, patientBirthDate: null });
  assert.equal(child.value, 0.556);
  assert.equal(child.population, 'pediatric');
  assert.equal(child.thresholdOf, 'pediatric');
  assert.equal(child.validationSpecificity, 0.642);
  assert.equal(child.reason, 'age 7 y from PatientAge: pediatric threshold');
  const adult = chooseThreshold(withPops, { patientAge: null, patientBirthDate: '1960-03-01', studyDate: '2026-12-01' });
  assert.equal(adult.value, 0.277);
  assert.equal(adult.ageYears, 66);
  assert.equal(adult.ageSource, 'PatientBirthDate');
  const unknown = chooseThreshold(withPops, { patientAge: null, patientBirthDate: null, studyDate: null });
  assert.equal(unknown.value, 0.277);
  assert.equal(unknown.population, null);
  assert.equal(unknown.thresholdOf, 'adult');
  assert.match(unknown.reason, /age unknown.*lowest of the population thresholds \(adult\) applies, recall first/);
  // only a pediatric block: an adult study gets the lowest there is, not the pooled value
  const onlyChild = { ...pooled, populations: { pediatric: withPops.populations!.pediatric } };
  assert.equal(chooseThreshold(onlyChild, { patientAge: '040Y' }).value, 0.556);
  const single = chooseThreshold(pooled, { patientAge: '007Y' });
  assert.equal(single.value, 0.4645);
  assert.equal(single.thresholdOf, 'version');
  assert.equal(single.population, 'pediatric');
});

test('--population pairs parse to a set -> population map; a bad or repeated pair is E_BAD_ARGUMENT', () => {
  assert.deepEqual(
    [...parsePopulationMap(['nih=adult', ' kermany = Pediatric '])],
    [
      ['nih', 'adult'],
      ['kermany', 'pediatric'],
    ],
  );
  for (const bad of [['nih'], ['nih=elderly'], ['nih=adult', 'nih=pediatric'], ['=adult']]) {
    assert.throws(
      () => parsePopulationMap(bad),
      (e: unknown) => e instanceof CxrError && e.code === 'E_BAD_ARGUMENT',
      bad.join(' '),
    );
  }
});

test("each population's threshold is calibrateThreshold on its own sets' rows, with the few-positives warning", () => {
  const rows = [
    // adult: positives 0.9 0.6 0.3, negatives 0.5 0.2
    ...[0.9, 0.6, 0.3].map((probability) => ({ dataset: 'nih', label: 1, probability })),
    ...[0.5, 0.2].map((probability) => ({ dataset: 'nih', label: 0, probability })),
    // pediatric (two sets): positives 0.95 0.8, negatives 0.7 0.1
    ...[0.95, 0.8].map((probability) => ({ dataset: 'kermany', label: 1, probability })),
    { dataset: 'kermany', label: 0, probability: 0.7 },
    { dataset: 'other-kids', label: 0, probability: 0.1 },
  ];
  const map = parsePopulationMap(['nih=adult', 'kermany=pediatric', 'other-kids=pediatric']);
  const p = populationThresholds(rows, map, 0.6);
  const adult = calibrateThreshold([0.9, 0.6, 0.3, 0.5, 0.2], [1, 1, 1, 0, 0], 0.6);
  assert.equal(p.adult!.value, adult.threshold);
  assert.equal(p.adult!.value, 0.6);
  assert.equal(p.adult!.validationSensitivity, 2 / 3);
  assert.equal(p.adult!.validationSpecificity, 1);
  assert.deepEqual([p.adult!.n, p.adult!.positives, p.adult!.datasets], [5, 3, ['nih']]);
  assert.equal(p.pediatric!.value, 0.8);
  assert.equal(p.pediatric!.validationSpecificity, 1);
  assert.deepEqual([p.pediatric!.n, p.pediatric!.positives, p.pediatric!.datasets], [4, 2, ['kermany', 'other-kids']]);
  assert.match(p.pediatric!.warnings![0], /calibrated on 2 positive images \(fewer than 20\)/);
  // a set with no population is refused, not silently dropped
  assert.throws(
    () => populationThresholds([...rows, { dataset: 'mystery', label: 1, probability: 0.5 }], map, 0.6),
    (e: unknown) => e instanceof CxrError && /mystery/.test(e.message),
  );
});

test("the int8 model's own threshold block carries its populations to the engine", () => {
  const manifest = {
    name: 'classifier',
    threshold: pooled,
    quantization: { file: 'model.int8.onnx', served: true, threshold: withPops },
  } as unknown as ModelManifest;
  assert.deepEqual(servedFile(manifest, 'dir', 'auto').threshold, withPops);
  assert.deepEqual(servedFile(manifest, 'dir', 'float').threshold, pooled);
  assert.equal(chooseThreshold(servedFile(manifest, 'dir', 'auto').threshold!, { patientAge: '004Y' }).value, 0.556);
});

test('an image folder is decided at the threshold of the one population whose validation sets name it; none when no or several match; an asked population must exist', () => {
  const t = {
    populations: {
      adult: { value: 0.28, validationSensitivity: 0.96, validationSpecificity: 0.4, n: 55, positives: 30, datasets: ['nih'] },
      pediatric: { value: 0.55, validationSensitivity: 0.95, validationSpecificity: 0.6, n: 476, positives: 342, datasets: ['kermany', 'other-kids'] },
    },
  };
  assert.deepEqual(populationForDatasets(t, ['nih']), { population: 'adult', value: 0.28, calibration: null, why: 'nih is among its validation sets' });
  assert.deepEqual(populationForDatasets(t, ['kermany', 'other-kids']), {
    population: 'pediatric',
    value: 0.55,
    calibration: null,
    why: 'kermany, other-kids are among its validation sets',
  });
  assert.equal(populationForDatasets(t, ['nih', 'kermany']), null);
  assert.equal(populationForDatasets(t, ['elsewhere']), null);
  assert.equal(populationForDatasets(t, []), null);
  assert.equal(populationForDatasets({}, ['nih']), null);
  assert.deepEqual(populationForDatasets(t, ['elsewhere'], 'pediatric'), { population: 'pediatric', value: 0.55, calibration: null, why: 'asked for' });
  assert.throws(() => populationForDatasets({}, ['nih'], 'adult'), /E_BAD_ARGUMENT|no adult threshold/);
});

test('with calibrations of their own, an unknown age gets the lowest threshold on the raw scale, and a study of a population gets its calibration', () => {
  // adult 0.3 on its own scale is raw sigmoid(logit(0.3) + 2) = 0.76; pediatric 0.5 on the version's (none) is raw 0.5
  const adultCal = {
    method: 'platt' as const,
    a: 1,
    b: -2,
    fittedOn: { views: 4, subset: 'validation', n: 10, split: 'split.csv', at: 'x' },
    eceBefore: 0.1,
    eceAfter: 0.05,
  };
  const t: ThresholdInfo = {
    value: 0.4,
    targetRecall: 0.95,
    validationSensitivity: 1,
    validationSpecificity: 0.5,
    populations: {
      adult: { value: 0.3, validationSensitivity: 1, validationSpecificity: 0.5, n: 10, positives: 5, datasets: ['nih'], calibration: adultCal },
      pediatric: { value: 0.5, validationSensitivity: 1, validationSpecificity: 0.5, n: 10, positives: 5, datasets: ['kermany'] },
    },
  };
  const unknown = chooseThreshold(t, { patientAge: null, patientBirthDate: null, studyDate: null });
  assert.deepEqual([unknown.thresholdOf, unknown.value, unknown.calibration], ['pediatric', 0.5, null]);
  const adult = chooseThreshold(t, { patientAge: '066Y' });
  assert.deepEqual([adult.thresholdOf, adult.calibration], ['adult', adultCal]);
  // the study's probability: its population's own calibration of the raw mean, else what was served
  assert.ok(Math.abs(populationProbability(adultCal, { probability: 0.9, rawProbability: 0.5 }) - sigmoid(logit(0.5) - 2)) < 1e-15);
  assert.equal(populationProbability(null, { probability: 0.9, rawProbability: 0.5 }), 0.9);
  // comparing values alone would have picked the adult's 0.3
  assert.ok(Math.abs(uncalibrate(adultCal, 0.3) - sigmoid(logit(0.3) + 2)) < 1e-15);
});

test('fitPopulationCalibrations fits the version’s calibration on every row and each population’s on its rows alone; a row of no population keeps the version’s', () => {
  const raw = [0.9, 0.7, 0.4, 0.2, 0.8, 0.6, 0.3, 0.1, 0.5];
  const labels = [1, 1, 0, 0, 1, 0, 1, 0, 1];
  const pops = ['adult', 'adult', 'adult', 'adult', 'pediatric', 'pediatric', 'pediatric', 'pediatric', undefined] as const;
  const fittedOn = (n: number) => ({ views: 4, subset: 'validation', n, split: 'split.csv', at: 'x' });
  const r = fitPopulationCalibrations(raw, labels, pops, 'platt', fittedOn);
  const pooled = fitCalibration(raw, labels, 'platt');
  assert.deepEqual([r.pooled.info.a, r.pooled.info.b, r.pooled.info.fittedOn.n], [pooled.a, pooled.b, 9]);
  const adult = fitCalibration(raw.slice(0, 4), labels.slice(0, 4), 'platt');
  const child = fitCalibration(raw.slice(4, 8), labels.slice(4, 8), 'platt');
  assert.deepEqual([r.populations.adult!.a, r.populations.adult!.b, r.populations.adult!.fittedOn.n], [adult.a, adult.b, 4]);
  assert.deepEqual([r.populations.pediatric!.a, r.populations.pediatric!.b], [child.a, child.b]);
  assert.deepEqual(r.rowProbabilities, [
    ...raw.slice(0, 4).map((p) => applyCalibration(adult, p)),
    ...raw.slice(4, 8).map((p) => applyCalibration(child, p)),
    applyCalibration(pooled, 0.5),
  ]);
});
