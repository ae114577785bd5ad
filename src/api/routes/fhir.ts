/**
 * FHIR R4 DiagnosticReport with its Observation for a scored study, for a RIS/EHR:
 * `GET /fhir/r4/DiagnosticReport?study=<StudyInstanceUID>` answers a searchset Bundle. The
 * report is `preliminary` (a machine's triage result, not a radiologist's read) and says it is
 * not for diagnostic use; the patient is named only by the service's pseudonym.
 */
import { findPrediction, findStudy, worklist } from '../../db/studies.js';
import { CxrError } from '../../errors.js';
import { Query, type Reply } from '../http.js';
import { json, ref } from '../openapi-types.js';
import type { Ctx, RouteDef } from '../route.js';

type Resource = Record<string, unknown>;

const SNOMED = 'http://snomed.info/sct';
const LOINC = 'http://loinc.org';
const PNEUMONIA = { system: SNOMED, code: '233604007', display: 'Pneumonia' };
const INTERPRETATION = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';

interface ModelRefLike {
  name?: string;
  version?: string;
}

async function reportFor(c: Ctx, studyUid: string): Promise<Resource[]> {
  const [row] = await worklist(c.deps.ds, { studyInstanceUid: studyUid }, null, 1);
  if (row?.status !== 'scored' || row.probability === null) return [];
  const [study, prediction] = await Promise.all([findStudy(c.deps.ds, row.studyId), findPrediction(c.deps.ds, row.studyId)]);
  if (!study || !prediction) return [];
  const models = (prediction.report as { models?: { segmenter?: ModelRefLike; classifier?: ModelRefLike } }).models ?? {};
  const modelText = ['segmenter', 'classifier']
    .map((k) => models[k as 'segmenter' | 'classifier'])
    .filter((m): m is ModelRefLike => !!m)
    .map((m) => `${m.name}@${m.version}`)
    .join(', ');
  const positive = row.decision === 'positive';
  const obsId = `obs-${row.studyId}`;
  const observation: Resource = {
    resourceType: 'Observation',
    id: obsId,
    status: 'preliminary',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'imaging' }] }],
    code: { coding: [PNEUMONIA], text: 'Pneumonia probability (AI triage)' },
    valueQuantity: { value: row.probability, unit: '1', system: 'http://unitsofmeasure.org', code: '1' },
    interpretation: [{ coding: [{ system: INTERPRETATION, code: positive ? 'POS' : 'NEG', display: positive ? 'Positive' : 'Negative' }] }],
    component: [
      { code: { text: 'decision threshold' }, valueQuantity: { value: prediction.threshold, unit: '1', system: 'http://unitsofmeasure.org', code: '1' } },
      { code: { text: 'target recall' }, valueQuantity: { value: prediction.targetRecall, unit: '1', system: 'http://unitsofmeasure.org', code: '1' } },
      { code: { text: 'flagged for review' }, valueBoolean: row.flagged },
    ],
    device: { display: `cxr-triage ${modelText}` },
    note: [
      { text: `QC flags: ${row.qcFlags.length > 0 ? row.qcFlags.join(', ') : 'none'}; flag reasons: ${row.flagReasons.join(', ') || 'none'}` },
      { text: 'Not for diagnostic use.' },
    ],
    derivedFrom: [{ identifier: { system: 'urn:dicom:uid', value: `urn:oid:${study.sopInstanceUid}` }, display: `${study.viewPosition ?? ''} image`.trim() }],
  };
  const report: Resource = {
    resourceType: 'DiagnosticReport',
    id: row.studyId,
    status: 'preliminary',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'RAD', display: 'Radiology' }] }],
    code: { coding: [{ system: LOINC, code: '18748-4', display: 'Diagnostic imaging study' }], text: 'Chest radiograph AI triage (pneumonia)' },
    ...(study.patientPseudonym ? { subject: { identifier: { system: 'urn:cxr-triage:patient-pseudonym', value: study.patientPseudonym } } } : {}),
    ...(row.studyDate ? { effectiveDateTime: row.studyDate } : {}),
    issued: prediction.createdAt.toISOString(),
    identifier: [
      { system: 'urn:dicom:uid', value: `urn:oid:${studyUid}` },
      ...(row.accessionNumber ? [{ type: { text: 'Accession number' }, value: row.accessionNumber }] : []),
    ],
    contained: [observation],
    result: [{ reference: `#${obsId}` }],
    conclusion:
      `${positive ? 'Pneumonia suspected' : 'No pneumonia detected'} by AI triage: probability ${row.probability.toFixed(3)} ` +
      `(threshold ${prediction.threshold.toFixed(3)} for target recall ${prediction.targetRecall}); ${row.scoredImages} frontal image(s) scored` +
      `${row.flagged ? '; flagged for review' : ''}. Not for diagnostic use.`,
    conclusionCode: positive ? [{ coding: [PNEUMONIA] }] : [],
  };
  return [report];
}

export const diagnosticReports: RouteDef = {
  method: 'get',
  path: '/fhir/r4/DiagnosticReport',
  roles: ['clinician', 'auditor'],
  audit: 'fhir.read',
  doc: {
    summary: 'FHIR R4 DiagnosticReport of a scored study',
    tags: ['fhir'],
    description:
      "searchset Bundle (application/fhir+json) with the study's DiagnosticReport and its contained Observation; empty when the study is not scored.",
    query: [{ name: 'study', description: 'StudyInstanceUID', required: true, schema: { type: 'string' } }],
    responses: {
      '200': { description: 'Bundle', content: { 'application/fhir+json': { schema: { type: 'object' } } } },
      '400': { description: 'No study parameter', content: json(ref('Error')) },
    },
  },
  async handle(c): Promise<Reply> {
    const study = new Query(c.req.query).string('study', 64);
    if (!study || !/^[0-9.]+$/.test(study)) throw new CxrError('E_BAD_REQUEST', 'study must be a StudyInstanceUID');
    const resources = await reportFor(c, study);
    c.studyId = (resources[0]?.id as string | undefined) ?? null;
    return {
      status: 200,
      type: 'application/fhir+json',
      json: {
        resourceType: 'Bundle',
        type: 'searchset',
        total: resources.length,
        entry: resources.map((resource) => ({ resource, search: { mode: 'match' } })),
      },
    };
  },
};
