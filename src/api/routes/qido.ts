/**
 * DICOMweb QIDO-RS (PS3.18 10.6) over what the service holds: studies, series and instances
 * matched on StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID (lists of UIDs), AccessionNumber,
 * PatientID, StudyDate (a date or a range), Modality and ModalitiesInStudy (lists), by keyword
 * or tag. Answers are DICOM JSON with each object's RetrieveURL (WADO-RS): what the database
 * holds, plus the level's usual attributes (patient name and id, descriptions, numbers) and any
 * `includefield` read from the header of the first instance (the identifiers are never stored
 * in the database, only a pseudonym). A workstation finds only what it sent; a clinician anything.
 */
import { instanceRows, qidoInstances, qidoSeries, qidoStudies, type QidoFilter } from '../../db/qido.js';
import { isoDate } from '../../dicom/attributes.js';
import { tagOf, vrOfTag, type DicomJsonDataset } from '../../dicom/index.js';
import { CxrError } from '../../errors.js';
import { Query, type Reply } from '../http.js';
import { json, ref, type ParamDoc } from '../openapi-types.js';
import { principalOf, type Ctx, type RouteDef } from '../route.js';
import { baseUrl, wadoUrl } from './stow.js';
import { headerJson } from './wado.js';

type DicomJson = DicomJsonDataset;
type Level = 'study' | 'series' | 'instance';

/** Matching keys: keyword and tag, as PS3.18 allows either. */
const KEYS = {
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  SOPInstanceUID: '00080018',
  AccessionNumber: '00080050',
  PatientID: '00100020',
  StudyDate: '00080020',
  Modality: '00080060',
  ModalitiesInStudy: '00080061',
} as const;

/** What each level returns from the first instance's header besides the database's attributes (PS3.18 Table 10.6.3-3..5, in part). */
const FILE_TAGS: Record<Level, string[]> = {
  // StudyTime, ReferringPhysicianName, StudyDescription, PatientName, PatientID, PatientBirthDate, PatientSex, StudyID
  study: ['00080030', '00080090', '00081030', '00100010', '00100020', '00100030', '00100040', '00200010'],
  // SeriesDescription, SeriesNumber, BodyPartExamined
  series: ['0008103E', '00200011', '00180015'],
  // ImageType, InstanceNumber, PhotometricInterpretation
  instance: ['00080008', '00200013', '00280004'],
};

function key(q: Query, name: keyof typeof KEYS): string | undefined {
  return q.string(name, 4000) ?? q.string(KEYS[name], 4000);
}

/** List matching (PS3.18 8.3.4.1): values separated by commas or backslashes. */
function list(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const items = v
    .split(/[,\\]/)
    .map((x) => x.trim())
    .filter((x) => x !== '');
  return items.length > 0 ? items : undefined;
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

function filterOf(c: Ctx, level: Level): QidoFilter {
  const q = new Query(c.req.query);
  const dates = dateRange(key(q, 'StudyDate'));
  const p = principalOf(c);
  const params = c.req.params as Record<string, string | undefined>;
  const patientId = key(q, 'PatientID');
  const modality = list(key(q, 'Modality'));
  const inStudy = list(key(q, 'ModalitiesInStudy'));
  return {
    studyInstanceUid: params.study ? [params.study] : list(key(q, 'StudyInstanceUID')),
    seriesInstanceUid: params.series ? [params.series] : list(key(q, 'SeriesInstanceUID')),
    sopInstanceUid: list(key(q, 'SOPInstanceUID')),
    accessionNumber: key(q, 'AccessionNumber'),
    // a PatientID never stored matches nothing: its pseudonym is compared
    patientPseudonym: patientId === undefined ? undefined : (c.deps.service.patientPseudonym(patientId) ?? '-'),
    studyDateFrom: dates.from,
    studyDateTo: dates.to,
    // a study has no Modality of its own: asked at study level it means ModalitiesInStudy
    modality: level === 'study' ? undefined : modality,
    modalitiesInStudy: level === 'study' ? (inStudy ?? modality) : inStudy,
    submittedBy: p.role === 'workstation' ? p.sub : undefined,
    limit: q.int('limit', 100, 1, 1000),
    offset: q.int('offset', 0, 0, 1_000_000),
  };
}

/** `includefield` (repeated, or comma-separated): keywords or tags; `all` for every attribute of the first instance. */
function includeOf(c: Ctx, level: Level): string[] | 'all' {
  const raw = (c.req.query as Record<string, unknown>).includefield;
  const values = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).flatMap((v) => String(v).split(','));
  const tags = new Set(FILE_TAGS[level]);
  for (const v of values.map((x) => x.trim()).filter((x) => x !== '')) {
    if (v === 'all') return 'all';
    const tag = tagOf(v);
    if (!tag) throw new CxrError('E_BAD_REQUEST', `includefield '${v.slice(0, 64)}' is neither an attribute keyword nor a tag`);
    tags.add(tag);
  }
  return [...tags];
}

/** The first instance's header attributes a result includes; the database's own attributes take precedence. */
async function withFile(c: Ctx, ids: { study: string; series?: string; sop?: string }, fields: string[] | 'all', own: DicomJson): Promise<DicomJson> {
  const p = principalOf(c);
  const [first] = await instanceRows(
    c.deps.ds,
    { studyInstanceUid: ids.study, seriesInstanceUid: ids.series, sopInstanceUid: ids.sop, submittedBy: p.role === 'workstation' ? p.sub : undefined },
    1,
  );
  if (!first) return own;
  let header: DicomJson;
  try {
    header = await headerJson(c, first);
  } catch (e) {
    // a stored file that cannot be read must not hide the match: the database's attributes still answer
    c.deps.log.warn('QIDO-RS could not read an instance header', {
      requestId: c.requestId,
      sha256: first.sha256,
      error: String((e as Error)?.message ?? e).slice(0, 200),
    });
    return own;
  }
  const picked: DicomJson = {};
  for (const [tag, el] of Object.entries(header)) {
    if (fields === 'all' ? !tag.startsWith('7FE0') : fields.includes(tag)) picked[tag] = el;
  }
  // a default attribute the file lacks is still named, empty (PS3.18 10.6.3.3)
  if (fields !== 'all') for (const tag of fields) picked[tag] ??= { vr: header[tag]?.vr ?? vrOfTag(tag) };
  const out: DicomJson = {};
  for (const tag of Object.keys({ ...picked, ...own }).sort()) out[tag] = own[tag] ?? picked[tag];
  return out;
}

const ui = (v: string) => ({ vr: 'UI', Value: [v] });
const opt = (vr: string, v: string | number | null | undefined) => (v === null || v === undefined || v === '' ? { vr } : { vr, Value: [v] });

const query: ParamDoc[] = [
  ...Object.keys(KEYS).map((k) => ({ name: k, description: `matching key (or its tag ${KEYS[k as keyof typeof KEYS]})`, schema: { type: 'string' } })),
  {
    name: 'includefield',
    description: "attributes to add (keywords or tags, comma-separated or repeated; 'all': every attribute of the first instance)",
    schema: { type: 'string' },
  },
  { name: 'limit', description: 'at most this many results (default 100)', schema: { type: 'integer' } },
  { name: 'offset', description: 'skip this many results', schema: { type: 'integer' } },
];

function route(path: string, level: Level, summary: string, run: (c: Ctx, f: QidoFilter, fields: string[] | 'all') => Promise<DicomJson[]>): RouteDef {
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
        '400': { description: 'A matching key or includefield that cannot be read', content: json(ref('Error')) },
      },
    },
    async handle(c): Promise<Reply> {
      const f = filterOf(c, level);
      const items = await run(c, f, includeOf(c, level));
      c.detail = { count: items.length };
      return { status: 200, json: items, type: 'application/dicom+json' };
    },
  };
}

const studies = async (c: Ctx, f: QidoFilter, fields: string[] | 'all'): Promise<DicomJson[]> => {
  const out: DicomJson[] = [];
  for (const s of await qidoStudies(c.deps.ds, f)) {
    const own: DicomJson = {
      '00080020': opt('DA', s.studyDate),
      '00080050': opt('SH', s.accessionNumber),
      '00080061': s.modalities.length > 0 ? { vr: 'CS', Value: s.modalities } : { vr: 'CS' },
      '00081190': { vr: 'UR', Value: [wadoUrl(baseUrl(c.req), s.studyInstanceUid)] },
      '0020000D': ui(s.studyInstanceUid),
      '00201206': opt('IS', s.series),
      '00201208': opt('IS', s.instances),
    };
    out.push(await withFile(c, { study: s.studyInstanceUid }, fields, own));
  }
  return out;
};

const series = async (c: Ctx, f: QidoFilter, fields: string[] | 'all'): Promise<DicomJson[]> => {
  const out: DicomJson[] = [];
  for (const s of await qidoSeries(c.deps.ds, f)) {
    const own: DicomJson = {
      '00080060': opt('CS', s.modality),
      '00081190': { vr: 'UR', Value: [`${wadoUrl(baseUrl(c.req), s.studyInstanceUid)}/series/${s.seriesInstanceUid}`] },
      '0020000D': ui(s.studyInstanceUid),
      '0020000E': ui(s.seriesInstanceUid),
      '00201209': opt('IS', s.instances),
    };
    out.push(await withFile(c, { study: s.studyInstanceUid, series: s.seriesInstanceUid }, fields, own));
  }
  return out;
};

const instances = async (c: Ctx, f: QidoFilter, fields: string[] | 'all'): Promise<DicomJson[]> => {
  const out: DicomJson[] = [];
  for (const i of await qidoInstances(c.deps.ds, f)) {
    const own: DicomJson = {
      '00080016': opt('UI', i.sopClassUid),
      '00080018': ui(i.sopInstanceUid),
      '00081190': { vr: 'UR', Value: [wadoUrl(baseUrl(c.req), i.studyInstanceUid, i.seriesInstanceUid, i.sopInstanceUid)] },
      '00185101': opt('CS', i.viewPosition),
      '0020000D': ui(i.studyInstanceUid),
      '0020000E': ui(i.seriesInstanceUid),
      '00280010': opt('US', i.rows),
      '00280011': opt('US', i.columns),
    };
    out.push(await withFile(c, { study: i.studyInstanceUid, series: i.seriesInstanceUid, sop: i.sopInstanceUid }, fields, own));
  }
  return out;
};

export const qidoRoutes: RouteDef[] = [
  route('/dicomweb/studies', 'study', 'Search for studies (QIDO-RS)', studies),
  route('/dicomweb/studies/:study/series', 'series', "Search for a study's series (QIDO-RS)", series),
  route('/dicomweb/series', 'series', 'Search for series (QIDO-RS)', series),
  route('/dicomweb/studies/:study/series/:series/instances', 'instance', "Search for a series' instances (QIDO-RS)", instances),
  route('/dicomweb/studies/:study/instances', 'instance', "Search for a study's instances (QIDO-RS)", instances),
  route('/dicomweb/instances', 'instance', 'Search for instances (QIDO-RS)', instances),
];
