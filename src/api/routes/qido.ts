/**
 * DICOMweb QIDO-RS (PS3.18 10.6) over what the service holds: studies, series and instances
 * matched on StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, AccessionNumber, StudyDate
 * (a date or a range) and Modality, by keyword or tag. Answers are DICOM JSON with each
 * object's RetrieveURL (WADO-RS). A workstation finds only what it sent; a clinician anything.
 */
import { qidoInstances, qidoSeries, qidoStudies, type QidoFilter } from '../../db/qido.js';
import { isoDate } from '../../dicom/attributes.js';
import { CxrError } from '../../errors.js';
import { Query, type Reply } from '../http.js';
import { json, ref, type ParamDoc } from '../openapi-types.js';
import { principalOf, type Ctx, type RouteDef } from '../route.js';
import { baseUrl, wadoUrl } from './stow.js';

type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;

/** Matching keys: keyword and tag, as PS3.18 allows either. */
const KEYS = {
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  SOPInstanceUID: '00080018',
  AccessionNumber: '00080050',
  StudyDate: '00080020',
  Modality: '00080060',
} as const;

function key(q: Query, name: keyof typeof KEYS): string | undefined {
  return q.string(name, 200) ?? q.string(KEYS[name], 200);
}

/** StudyDate: YYYYMMDD, or a range A-B with either end open. */
function dateRange(v: string | undefined): { from?: string; to?: string } {
  if (v === undefined) return {};
  const [a, b] = v.includes('-') ? v.split('-', 2) : [v, v];
  const from = a ? isoDate(a) : undefined;
  const to = b ? isoDate(b) : undefined;
  if (from === null || to === null) throw new CxrError('E_BAD_REQUEST', `StudyDate must be YYYYMMDD or a range YYYYMMDD-YYYYMMDD (got '${v}')`);
  return { from, to };
}

function filterOf(c: Ctx): QidoFilter {
  const q = new Query(c.req.query);
  const dates = dateRange(key(q, 'StudyDate'));
  const p = principalOf(c);
  const params = c.req.params as Record<string, string | undefined>;
  return {
    studyInstanceUid: params.study ?? key(q, 'StudyInstanceUID'),
    seriesInstanceUid: params.series ?? key(q, 'SeriesInstanceUID'),
    sopInstanceUid: key(q, 'SOPInstanceUID'),
    accessionNumber: key(q, 'AccessionNumber'),
    studyDateFrom: dates.from,
    studyDateTo: dates.to,
    modality: key(q, 'Modality'),
    submittedBy: p.role === 'workstation' ? p.sub : undefined,
    limit: q.int('limit', 100, 1, 1000),
    offset: q.int('offset', 0, 0, 1_000_000),
  };
}

const base = (c: Ctx) => baseUrl(c.req);
const ui = (v: string) => ({ vr: 'UI', Value: [v] });
const opt = (vr: string, v: string | number | null | undefined) => (v === null || v === undefined || v === '' ? { vr } : { vr, Value: [v] });

const query: ParamDoc[] = [
  ...Object.keys(KEYS).map((k) => ({ name: k, description: `matching key (or its tag ${KEYS[k as keyof typeof KEYS]})`, schema: { type: 'string' } })),
  { name: 'limit', description: 'at most this many results (default 100)', schema: { type: 'integer' } },
  { name: 'offset', description: 'skip this many results', schema: { type: 'integer' } },
];

function route(path: string, summary: string, run: (c: Ctx, f: QidoFilter) => Promise<DicomJson[]>): RouteDef {
  return {
    method: 'get',
    path,
    roles: ['clinician', 'workstation'],
    audit: 'study.search',
    basicAuth: true,
    doc: {
      summary,
      tags: ['dicomweb'],
      description: 'DICOM JSON array (application/dicom+json); empty when nothing matches. A workstation finds only the instances it sent.',
      query,
      responses: {
        '200': { description: 'Matches', content: { 'application/dicom+json': { schema: { type: 'array', items: ref('DicomJson') } } } },
        '400': { description: 'A matching key that cannot be read', content: json(ref('Error')) },
      },
    },
    async handle(c): Promise<Reply> {
      const f = filterOf(c);
      const items = await run(c, f);
      c.detail = { count: items.length };
      return { status: 200, json: items, type: 'application/dicom+json' };
    },
  };
}

const studies = async (c: Ctx, f: QidoFilter): Promise<DicomJson[]> =>
  (await qidoStudies(c.deps.ds, f)).map((s) => ({
    '00080020': opt('DA', s.studyDate),
    '00080050': opt('SH', s.accessionNumber),
    '00080061': s.modalities.length > 0 ? { vr: 'CS', Value: s.modalities } : { vr: 'CS' },
    '00081190': { vr: 'UR', Value: [wadoUrl(base(c), s.studyInstanceUid)] },
    '0020000D': ui(s.studyInstanceUid),
    '00201206': opt('IS', s.series),
    '00201208': opt('IS', s.instances),
  }));

const series = async (c: Ctx, f: QidoFilter): Promise<DicomJson[]> =>
  (await qidoSeries(c.deps.ds, f)).map((s) => ({
    '00080060': opt('CS', s.modality),
    '00081190': { vr: 'UR', Value: [`${wadoUrl(base(c), s.studyInstanceUid)}/series/${s.seriesInstanceUid}`] },
    '0020000D': ui(s.studyInstanceUid),
    '0020000E': ui(s.seriesInstanceUid),
    '00201209': opt('IS', s.instances),
  }));

const instances = async (c: Ctx, f: QidoFilter): Promise<DicomJson[]> =>
  (await qidoInstances(c.deps.ds, f)).map((i) => ({
    '00080016': opt('UI', i.sopClassUid),
    '00080018': ui(i.sopInstanceUid),
    '00081190': { vr: 'UR', Value: [wadoUrl(base(c), i.studyInstanceUid, i.seriesInstanceUid, i.sopInstanceUid)] },
    '00185101': opt('CS', i.viewPosition),
    '0020000D': ui(i.studyInstanceUid),
    '0020000E': ui(i.seriesInstanceUid),
    '00280010': opt('US', i.rows),
    '00280011': opt('US', i.columns),
  }));

export const qidoRoutes: RouteDef[] = [
  route('/dicomweb/studies', 'Search for studies (QIDO-RS)', studies),
  route('/dicomweb/studies/:study/series', "Search for a study's series (QIDO-RS)", series),
  route('/dicomweb/series', 'Search for series (QIDO-RS)', series),
  route('/dicomweb/studies/:study/series/:series/instances', "Search for a series' instances (QIDO-RS)", instances),
  route('/dicomweb/studies/:study/instances', "Search for a study's instances (QIDO-RS)", instances),
  route('/dicomweb/instances', 'Search for instances (QIDO-RS)', instances),
];
