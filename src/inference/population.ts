/**
 * Which operating point a study gets. A version may carry one threshold per population
 * (manifest threshold.populations: adult, pediatric), each picked on its own sets' validation
 * rows; the study's population comes from the DICOM patient age. Recall first: a study whose
 * age is unknown gets the lowest (most sensitive) of the population thresholds, compared on the
 * raw probability scale when populations carry calibrations of their own.
 */
import type { DicomMetadata } from '../dicom/index.js';
import { CxrError } from '../errors.js';
import type { Population, PopulationThreshold, ThresholdInfo } from '../ml/model-store/index.js';
import { mostSensitivePopulation } from '../ml/calibrate.js';
import { applyCalibration, type ProbabilityCalibration } from '../ml/probability-calibration.js';
import type { PopulationEstimate } from '../ml/population-estimate.js';

/** Below this age (years) a patient is pediatric (the age the pediatric set's films were taken under). */
export const PEDIATRIC_BELOW_YEARS = 18;

const DAYS_PER_YEAR = 365.25;

/**
 * An Age String (PS3.5 6.2, VR AS: nnnD, nnnW, nnnM or nnnY) in years; null when it is not one.
 * Writers pad inconsistently, so 1-3 digits and surrounding spaces are accepted.
 */
export function parseAgeString(as: string | null | undefined): number | null {
  const m = /^\s*(\d{1,3})\s*([DWMY])\s*$/i.exec(as ?? '');
  if (!m) return null;
  const n = Number(m[1]);
  switch (m[2].toUpperCase()) {
    case 'D':
      return n / DAYS_PER_YEAR;
    case 'W':
      return (n * 7) / DAYS_PER_YEAR;
    case 'M':
      return n / 12;
    default:
      return n;
  }
}

/** Completed years between two YYYY-MM-DD dates (the age on the study day); null when either is missing or the study precedes the birth. */
export function ageBetween(birthDate: string | null | undefined, studyDate: string | null | undefined): number | null {
  const b = /^(\d{4})-(\d{2})-(\d{2})$/.exec(birthDate ?? '');
  const s = /^(\d{4})-(\d{2})-(\d{2})$/.exec(studyDate ?? '');
  if (!b || !s) return null;
  const [by, bm, bd] = b.slice(1).map(Number);
  const [sy, sm, sd] = s.slice(1).map(Number);
  let years = sy - by;
  if (sm < bm || (sm === bm && sd < bd)) years--;
  return years >= 0 ? years : null;
}

/** The header fields a study's age is read from (DicomMetadata has them). */
export type AgeFields = Partial<Pick<DicomMetadata, 'patientAge' | 'patientBirthDate' | 'studyDate'>>;

export interface StudyAge {
  years: number | null;
  source: 'PatientAge' | 'PatientBirthDate' | null;
}

/** The patient's age on the study: PatientAge, else PatientBirthDate with StudyDate, else unknown. */
export function studyAge(meta: AgeFields): StudyAge {
  const fromAge = parseAgeString(meta.patientAge);
  if (fromAge !== null) return { years: fromAge, source: 'PatientAge' };
  const fromDates = ageBetween(meta.patientBirthDate, meta.studyDate);
  if (fromDates !== null) return { years: fromDates, source: 'PatientBirthDate' };
  return { years: null, source: null };
}

export function populationOfAge(years: number | null): Population | null {
  if (years === null) return null;
  return years < PEDIATRIC_BELOW_YEARS ? 'pediatric' : 'adult';
}

/** The threshold a study is decided at, and why (stored with the report). */
export interface ChosenThreshold {
  value: number;
  validationSensitivity: number;
  validationSpecificity: number | null;
  /** the study's population from its age (null: unknown) */
  population: Population | null;
  ageYears: number | null;
  ageSource: StudyAge['source'];
  /** whose threshold was applied: a population's, or the version's single one */
  thresholdOf: Population | 'version';
  /** that population's own probability calibration, which replaces the version's for this study (null: the version's applies) */
  calibration: ProbabilityCalibration | null;
  reason: string;
  /** age unknown and the version estimates populations: what the film looks like */
  estimate?: PopulationEstimate;
}

const round2 = (v: number) => Math.round(v * 100) / 100;

/** The populations a threshold block has a threshold for, with it. */
export function definedPopulations(t: Pick<ThresholdInfo, 'populations'>): [Population, PopulationThreshold][] {
  return Object.entries(t.populations ?? {}).filter((e): e is [Population, PopulationThreshold] => e[1] != null);
}

/**
 * `calibration`: the one the engine applies to every study (the served model's), on whose scale
 * the thresholds of populations without their own are.
 */
export function chooseThreshold(
  t: ThresholdInfo,
  meta: AgeFields,
  calibration: ProbabilityCalibration | null = null,
  estimate: PopulationEstimate | null = null,
): ChosenThreshold {
  const age = studyAge(meta);
  const fromAge = populationOfAge(age.years);
  // the film's estimate stands in for an unknown age only when it is sure
  const estimated = fromAge === null && estimate?.confident ? estimate.population : null;
  const population = fromAge ?? estimated;
  const base = { population, ageYears: age.years === null ? null : round2(age.years), ageSource: age.source };
  const unknownText = 'age unknown (no PatientAge, no PatientBirthDate with StudyDate)';
  const ageText =
    age.years !== null
      ? `age ${round2(age.years)} y from ${age.source}`
      : estimated
        ? `${unknownText}, estimated ${estimated} from the film (${estimate!.probability.toFixed(3)} >= the version's minimum confidence)`
        : estimate
          ? `${unknownText}; the film looks ${estimate.population} at ${estimate.probability.toFixed(3)}, below the version's minimum confidence`
          : unknownText;
  const withEstimate = fromAge === null && estimate ? { estimate } : {};
  const pops = definedPopulations(t);
  if (pops.length === 0) {
    return {
      ...base,
      value: t.value,
      validationSensitivity: t.validationSensitivity,
      validationSpecificity: t.validationSpecificity,
      thresholdOf: 'version',
      calibration: null,
      reason: `${ageText}; the version has one threshold for every population`,
      ...withEstimate,
    };
  }
  const own = population ? pops.find(([k]) => k === population) : undefined;
  // recall first: without its own, the most sensitive operating point the version has
  const [k, p] = own ?? mostSensitivePopulation(t, calibration)!;
  const why = population ? `${ageText}: the version has no ${population} threshold` : ageText;
  return {
    ...base,
    value: p.value,
    validationSensitivity: p.validationSensitivity,
    validationSpecificity: p.validationSpecificity,
    thresholdOf: k,
    calibration: p.calibration ?? null,
    reason: own ? `${ageText}: ${k} threshold` : `${why}; the lowest of the population thresholds (${k}) applies, recall first`,
    ...withEstimate,
  };
}

/**
 * The population whose threshold scores a set of image folders (which carry no ages): `asked`
 * when given (it must have a threshold), else the one population whose `datasets` name every
 * folder, else none (the version's single threshold).
 */
export function populationForDatasets(
  t: Pick<ThresholdInfo, 'populations'>,
  datasets: readonly string[],
  asked?: Population,
): { population: Population; value: number; calibration: ProbabilityCalibration | null; why: string } | null {
  const pops = definedPopulations(t);
  if (asked) {
    const p = pops.find(([name]) => name === asked);
    if (!p)
      throw new CxrError('E_BAD_ARGUMENT', `the classifier has no ${asked} threshold (it has: ${pops.map(([n]) => n).join(', ') || 'one threshold for all'})`);
    return { population: asked, value: p[1].value, calibration: p[1].calibration ?? null, why: 'asked for' };
  }
  const matching = pops.filter(([, p]) => datasets.length > 0 && datasets.every((d) => p.datasets.includes(d)));
  if (matching.length !== 1) return null;
  const [population, p] = matching[0];
  return {
    population,
    value: p.value,
    calibration: p.calibration ?? null,
    why: `${datasets.join(', ')} ${datasets.length > 1 ? 'are' : 'is'} among its validation sets`,
  };
}

/** What a population's own head gave a study (engine ImageScore.populationRaw). */
export interface PopulationScored {
  probability: number;
  rawProbability: number;
  /** the raw TTA mean of each population that has its own head */
  populationRaw?: Partial<Record<Population, number>>;
}

function ownHeadRaw(score: PopulationScored, population: Population | 'version' | null | undefined): number | undefined {
  return population && population !== 'version' ? score.populationRaw?.[population] : undefined;
}

/** The raw TTA mean a study of `population` is decided on: its own head's when it has one, else the graph's. */
export function populationRawProbability(score: PopulationScored, population: Population | 'version' | null | undefined): number {
  return ownHeadRaw(score, population) ?? score.rawProbability;
}

/**
 * The probability a study of a population is decided on: its population's own calibration of
 * the raw TTA mean (its own head's, when it has one) when it has one, else what the engine
 * served (the version's calibration).
 */
export function populationProbability(
  own: ProbabilityCalibration | null | undefined,
  score: PopulationScored,
  population?: Population | 'version' | null,
): number {
  const headRaw = ownHeadRaw(score, population);
  if (headRaw !== undefined) return applyCalibration(own, headRaw);
  return own ? applyCalibration(own, score.rawProbability) : score.probability;
}
