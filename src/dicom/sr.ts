/**
 * The AI result as a Comprehensive SR, modelled on TID 1500 (Measurement Report) as the IHE
 * AI Results profile uses it: a root "Imaging Measurement Report" container with language,
 * device observer and procedure; an image library naming the scored film; one measurement
 * group for the finding (pneumonia) with the probability, the decision, the threshold and
 * the recall it was picked for, the model versions and QC flags, and the film it came from.
 * Where DICOM (DCM) or SNOMED CT (SCT) has a code it is used; the service's own quantities
 * use the local scheme 99CXR, declared in the Coding Scheme Identification Sequence.
 */
import { commonAttributes, NOT_FOR_DIAGNOSTIC_USE, type DerivedIdentity, type NaturalDataset, type SourceHeader } from './derived.js';
import { formatDS, newUid } from './write.js';

export const COMPREHENSIVE_SR = '1.2.840.10008.5.1.4.1.1.88.33';
export const LOCAL_SCHEME = '99CXR';

export interface Code {
  value: string;
  scheme: string;
  meaning: string;
}

const c = (value: string, scheme: string, meaning: string): Code => ({ value, scheme, meaning });

/** Every coded concept the report uses, named once (the unit test checks the tree against these). */
export const CODES = {
  report: c('126000', 'DCM', 'Imaging Measurement Report'),
  language: c('121049', 'DCM', 'Language of Content Item and Descendants'),
  english: c('en-US', 'RFC5646', 'English (United States)'),
  observerType: c('121005', 'DCM', 'Observer Type'),
  device: c('121007', 'DCM', 'Device'),
  deviceUid: c('121012', 'DCM', 'Device Observer UID'),
  deviceName: c('121013', 'DCM', 'Device Observer Name'),
  deviceManufacturer: c('121014', 'DCM', 'Device Observer Manufacturer'),
  procedureReported: c('121058', 'DCM', 'Procedure reported'),
  chestXray: c('399208008', 'SCT', 'Plain chest X-ray'),
  imageLibrary: c('111028', 'DCM', 'Image Library'),
  imageLibraryGroup: c('126200', 'DCM', 'Image Library Group'),
  measurements: c('126010', 'DCM', 'Imaging Measurements'),
  measurementGroup: c('125007', 'DCM', 'Measurement Group'),
  trackingId: c('112039', 'DCM', 'Tracking Identifier'),
  trackingUid: c('112040', 'DCM', 'Tracking Unique Identifier'),
  finding: c('121071', 'DCM', 'Finding'),
  pneumonia: c('233604007', 'SCT', 'Pneumonia'),
  algorithmName: c('111001', 'DCM', 'Algorithm Name'),
  algorithmVersion: c('111003', 'DCM', 'Algorithm Version'),
  algorithmParameters: c('111002', 'DCM', 'Algorithm Parameters'),
  probability: c('CXR001', LOCAL_SCHEME, 'Probability of pneumonia'),
  decision: c('CXR002', LOCAL_SCHEME, 'AI decision'),
  positive: c('10828004', 'SCT', 'Positive'),
  negative: c('260385009', 'SCT', 'Negative'),
  threshold: c('CXR003', LOCAL_SCHEME, 'Decision threshold'),
  targetRecall: c('CXR004', LOCAL_SCHEME, 'Target recall'),
  flaggedForReview: c('CXR005', LOCAL_SCHEME, 'Flagged for review'),
  yes: c('373066001', 'SCT', 'Yes'),
  no: c('373067005', 'SCT', 'No'),
  flagReason: c('CXR006', LOCAL_SCHEME, 'Flag reason'),
  qcFlag: c('CXR007', LOCAL_SCHEME, 'Quality control flag'),
  sourceOfMeasurement: c('121112', 'DCM', 'Source of Measurement'),
  comment: c('121106', 'DCM', 'Comment'),
  noUnits: c('1', 'UCUM', 'no units'),
} as const;

/** What the report says: one scored film and the prediction stored for it. */
export interface AiResult {
  source: Pick<SourceHeader, 'studyInstanceUid' | 'seriesInstanceUid' | 'sopClassUid' | 'sopInstanceUid'>;
  probability: number;
  threshold: number;
  targetRecall: number;
  decision: 'positive' | 'negative';
  flagged: boolean;
  flagReasons: readonly string[];
  qcFlags: readonly string[];
  /** name@version */
  classifier: string;
  segmenter: string;
  /** the prediction's id in the service (tracking identifier) */
  predictionId: string;
}

const DEVICE_UID = newUid(['cxr-triage device observer']);

function codeItem(code: Code): NaturalDataset {
  return { CodeValue: code.value, CodingSchemeDesignator: code.scheme, CodeMeaning: code.meaning };
}

type Rel = 'CONTAINS' | 'HAS CONCEPT MOD' | 'HAS OBS CONTEXT';

function item(rel: Rel, valueType: string, name: Code | null, value: NaturalDataset): NaturalDataset {
  return { RelationshipType: rel, ValueType: valueType, ...(name ? { ConceptNameCodeSequence: [codeItem(name)] } : {}), ...value };
}
const container = (rel: Rel, name: Code, children: NaturalDataset[]) =>
  item(rel, 'CONTAINER', name, { ContinuityOfContent: 'SEPARATE', ContentSequence: children });
const codeValue = (rel: Rel, name: Code, value: Code) => item(rel, 'CODE', name, { ConceptCodeSequence: [codeItem(value)] });
// TextValue is UT: no 64-character limit, but keep what a machine wrote short
const textValue = (rel: Rel, name: Code, value: string) => item(rel, 'TEXT', name, { TextValue: value.slice(0, 1024) });
const uidValue = (rel: Rel, name: Code, uid: string) => item(rel, 'UIDREF', name, { UID: uid });
const numValue = (rel: Rel, name: Code, n: number, units: Code) =>
  item(rel, 'NUM', name, { MeasuredValueSequence: [{ NumericValue: formatDS(n), MeasurementUnitsCodeSequence: [codeItem(units)] }] });
const imageRef = (name: Code | null, src: AiResult['source']) =>
  item('CONTAINS', 'IMAGE', name, { ReferencedSOPSequence: [{ ReferencedSOPClassUID: src.sopClassUid, ReferencedSOPInstanceUID: src.sopInstanceUid }] });

function splitRef(ref: string): { name: string; version: string } {
  const at = ref.lastIndexOf('@');
  return at > 0 ? { name: ref.slice(0, at), version: ref.slice(at + 1) } : { name: ref, version: '' };
}

/** The content tree (root item's attributes and its ContentSequence). Pure: same input, same tree. */
export function aiResultContent(r: AiResult): NaturalDataset {
  const cls = splitRef(r.classifier);
  const group = container('CONTAINS', CODES.measurementGroup, [
    textValue('HAS OBS CONTEXT', CODES.trackingId, `pneumonia, prediction ${r.predictionId}`),
    uidValue('HAS OBS CONTEXT', CODES.trackingUid, newUid(['cxr-triage tracking', r.source.sopInstanceUid, r.predictionId])),
    codeValue('CONTAINS', CODES.finding, CODES.pneumonia),
    textValue('HAS CONCEPT MOD', CODES.algorithmName, cls.name),
    textValue('HAS CONCEPT MOD', CODES.algorithmVersion, cls.version),
    textValue('HAS CONCEPT MOD', CODES.algorithmParameters, `segmenter ${r.segmenter}`),
    numValue('CONTAINS', CODES.probability, r.probability, CODES.noUnits),
    codeValue('CONTAINS', CODES.decision, r.decision === 'positive' ? CODES.positive : CODES.negative),
    numValue('CONTAINS', CODES.threshold, r.threshold, CODES.noUnits),
    numValue('CONTAINS', CODES.targetRecall, r.targetRecall, CODES.noUnits),
    codeValue('CONTAINS', CODES.flaggedForReview, r.flagged ? CODES.yes : CODES.no),
    ...r.flagReasons.map((f) => textValue('CONTAINS', CODES.flagReason, f)),
    ...(r.qcFlags.length > 0 ? r.qcFlags : ['none']).map((f) => textValue('CONTAINS', CODES.qcFlag, f)),
    imageRef(CODES.sourceOfMeasurement, r.source),
  ]);
  return {
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [codeItem(CODES.report)],
    ContinuityOfContent: 'SEPARATE',
    ContentTemplateSequence: [{ MappingResource: 'DCMR', TemplateIdentifier: '1500' }],
    ContentSequence: [
      codeValue('HAS CONCEPT MOD', CODES.language, CODES.english),
      codeValue('HAS OBS CONTEXT', CODES.observerType, CODES.device),
      uidValue('HAS OBS CONTEXT', CODES.deviceUid, DEVICE_UID),
      textValue('HAS OBS CONTEXT', CODES.deviceName, 'cxr-triage'),
      textValue('HAS OBS CONTEXT', CODES.deviceManufacturer, 'cxr-triage'),
      codeValue('HAS CONCEPT MOD', CODES.procedureReported, CODES.chestXray),
      container('CONTAINS', CODES.imageLibrary, [container('CONTAINS', CODES.imageLibraryGroup, [imageRef(null, r.source)])]),
      container('CONTAINS', CODES.measurements, [group]),
      textValue('CONTAINS', CODES.comment, NOT_FOR_DIAGNOSTIC_USE),
    ],
  };
}

/** The whole SR dataset: common attributes, SR Document Series/General, evidence, content. */
export function aiResultSr(src: SourceHeader, id: DerivedIdentity, r: AiResult): NaturalDataset {
  return {
    ...commonAttributes(src, id, COMPREHENSIVE_SR, r.classifier),
    Modality: 'SR',
    ReferencedPerformedProcedureStepSequence: [],
    CompletionFlag: 'COMPLETE',
    VerificationFlag: 'UNVERIFIED',
    PreliminaryFlag: 'PRELIMINARY',
    PerformedProcedureCodeSequence: [],
    CurrentRequestedProcedureEvidenceSequence: [
      {
        StudyInstanceUID: r.source.studyInstanceUid,
        ReferencedSeriesSequence: [
          {
            SeriesInstanceUID: r.source.seriesInstanceUid,
            ReferencedSOPSequence: [{ ReferencedSOPClassUID: r.source.sopClassUid, ReferencedSOPInstanceUID: r.source.sopInstanceUid }],
          },
        ],
      },
    ],
    CodingSchemeIdentificationSequence: [
      { CodingSchemeDesignator: LOCAL_SCHEME, CodingSchemeName: 'cxr-triage local codes', CodingSchemeResponsibleOrganization: 'cxr-triage' },
    ],
    ...aiResultContent(r),
  };
}
