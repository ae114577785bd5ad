/**
 * DICOMweb WADO-RS (PS3.18 10.4) over every instance the service holds (originals, and the
 * derived objects it registers in a study): a study, a series or an instance as
 * multipart/related application/dicom, byte for byte as stored; their metadata as DICOM JSON
 * with the pixel data by BulkDataURI; an instance's one frame as octet-stream; and rendered
 * JPEG/PNG with the file's window or one given. Enough for a DICOMweb viewer (OHIF) to open a
 * study. A workstation retrieves what it sent; a clinician any instance. Accept is negotiated:
 * what a route cannot produce is 406 E_NOT_ACCEPTABLE.
 */
import { instanceRows, type StoredInstance } from '../../db/qido.js';
import { dicomJson, nativeFrame, readWindowed, rgbFrame, type DicomJsonDataset, type WindowPolicy } from '../../dicom/index.js';
import { CxrError, isCxrError } from '../../errors.js';
import { encodeRendered, toGray8 } from '../../imaging/png.js';
import { multipartRelated, negotiate, type Offer } from '../accept.js';
import { Query, type Reply } from '../http.js';
import { json, ref, type ParamDoc, type ResponseDoc } from '../openapi-types.js';
import { principalOf, type Ctx, type RouteDef } from '../route.js';
import { baseUrl, wadoUrl } from './stow.js';

type Level = 'study' | 'series' | 'instance';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

const STUDY = '/dicomweb/studies/:study';
const SERIES = `${STUDY}/series/:series`;
const INSTANCE = `${SERIES}/instances/:instance`;
const PATHS: Record<Level, string> = { study: STUDY, series: SERIES, instance: INSTANCE };

/** The instances a request names, that the caller may see; none is 404 (absent and "not yours" alike). */
async function selected(c: Ctx, level: Level, what: string): Promise<StoredInstance[]> {
  const p = c.req.params as Record<string, string | undefined>;
  const caller = principalOf(c);
  const rows = await instanceRows(c.deps.ds, {
    studyInstanceUid: String(p.study),
    seriesInstanceUid: level === 'study' ? undefined : String(p.series),
    sopInstanceUid: level === 'instance' ? String(p.instance) : undefined,
    submittedBy: caller.role === 'workstation' ? caller.sub : undefined,
  });
  if (rows.length === 0) throw new CxrError('E_NOT_FOUND', `no such ${level}`);
  c.studyId = rows[0].id;
  c.detail = { level, what, instances: rows.length };
  return rows;
}

/** One audit row per instance read, once the reply is ready (a refusal keeps the route's one row). */
function audited(c: Ctx, rows: StoredInstance[], what: string): void {
  for (const r of rows) c.audits.push({ action: 'study.retrieve', studyId: r.id, outcome: 'ok', detail: { what, sopInstanceUid: r.sopInstanceUid } });
}

const instanceUrl = (c: Ctx, r: StoredInstance) => wadoUrl(baseUrl(c.req), r.studyInstanceUid, r.seriesInstanceUid, r.sopInstanceUid);

const notAcceptable: Record<string, ResponseDoc> = {
  '404': { description: 'No such study, series or instance (or not one this caller sent)', content: json(ref('Error')) },
  '406': { description: 'Accept names nothing this resource is available as (E_NOT_ACCEPTABLE)', content: json(ref('Error')) },
};
const binary = (type: string) => ({ [type]: { schema: { type: 'string', format: 'binary' } } });

function route(
  level: Level,
  suffix: string,
  summary: string,
  description: string,
  ok: ResponseDoc,
  handle: (c: Ctx) => Promise<Reply>,
  query?: ParamDoc[],
): RouteDef {
  return {
    method: 'get',
    path: `${PATHS[level]}${suffix}`,
    roles: ['clinician', 'workstation'],
    audit: 'study.retrieve',
    basicAuth: true,
    doc: { summary, tags: ['dicomweb'], description, query, responses: { '200': ok, ...notAcceptable } },
    handle,
  };
}

// ---- instances (application/dicom) ----

/** As stored: a requested transfer syntax other than `*` must be the one each instance has. */
const dicomOffer = (rows: StoredInstance[]): Offer => ({
  media: 'multipart/related',
  part: 'application/dicom',
  accepts: (p) => p['transfer-syntax'] === undefined || p['transfer-syntax'] === '*' || rows.every((r) => r.transferSyntax === p['transfer-syntax']),
});

function retrieve(level: Level): RouteDef {
  return route(
    level,
    '',
    `Retrieve ${level === 'instance' ? 'an instance' : `a ${level}`} (WADO-RS)`,
    `multipart/related; type="application/dicom" with ${level === 'instance' ? 'the stored instance' : `every instance of the ${level}`}, byte for byte as received ` +
      '(transfer-syntax `*` or absent: as stored; another is 406).',
    { description: 'The instances', content: binary('multipart/related') },
    async (c) => {
      const rows = await selected(c, level, 'instance');
      negotiate(c.req, [dicomOffer(rows)]);
      const parts = [];
      for (const r of rows)
        parts.push({
          type: `application/dicom; transfer-syntax=${r.transferSyntax ?? '*'}`,
          body: await c.deps.service.original(r),
          location: instanceUrl(c, r),
        });
      audited(c, rows, 'instance');
      const m = multipartRelated(parts, 'application/dicom');
      return { status: 200, body: m.body, type: m.type };
    },
  );
}

// ---- metadata (application/dicom+json) ----

const HEAD_BYTES = 64 * 1024;

/**
 * An instance's DICOM JSON, pixel data by reference. Read from the first piece of the stored
 * file when that reaches the pixel data (a header is a few KiB; the pixels are megabytes),
 * else from the whole file (a report has no pixel data; a header can be long).
 */
export async function headerJson(c: Ctx, r: StoredInstance): Promise<DicomJsonDataset> {
  const url = instanceUrl(c, r);
  const bulk = () => `${url}/frames/1`;
  const head = await c.deps.service.originalHead(r, HEAD_BYTES);
  if (head.length < Number(r.sizeBytes)) {
    const partial = dicomJsonOrNull(head, bulk);
    if (partial?.['7FE00010']) return partial;
  }
  return dicomJson(await c.deps.service.original(r), bulk);
}

function dicomJsonOrNull(bytes: Uint8Array, bulk: () => string): DicomJsonDataset | null {
  try {
    return dicomJson(bytes, bulk);
  } catch {
    return null;
  }
}

function metadata(level: Level): RouteDef {
  return route(
    level,
    '/metadata',
    `Retrieve ${level} metadata (WADO-RS)`,
    'DICOM JSON (PS3.18 F.2) of each instance: every attribute with its VR, person names as objects, and the pixel data as a BulkDataURI (the frame) instead of inline.',
    { description: 'One DICOM JSON dataset per instance', content: { 'application/dicom+json': { schema: { type: 'array', items: ref('DicomJson') } } } },
    async (c) => {
      const rows = await selected(c, level, 'metadata');
      const { offer } = negotiate(c.req, [{ media: 'application/dicom+json' }, { media: 'application/json' }]);
      const items = [];
      for (const r of rows) items.push(await headerJson(c, r));
      audited(c, rows, 'metadata');
      return { status: 200, json: items, type: offer.media };
    },
  );
}

// ---- frames (application/octet-stream) ----

export const retrieveFrames = route(
  'instance',
  '/frames/:frames',
  'Retrieve frames (WADO-RS)',
  'multipart/related; type="application/octet-stream": the frame uncompressed, Explicit VR Little Endian byte order. The service holds single-frame images: only frame 1 exists.',
  { description: 'The frame', content: binary('multipart/related') },
  async (c) => {
    const asked = String(c.req.params.frames ?? '').split(',');
    if (asked.some((f) => !/^[1-9][0-9]{0,5}$/.test(f))) throw new CxrError('E_BAD_REQUEST', 'frames is a comma-separated list of frame numbers from 1');
    if (asked.some((f) => f !== '1')) throw new CxrError('E_NOT_FOUND', 'no such frame: this instance has one');
    // each frame once, however often it is named: "1,1,…,1" in a 6 KB URL would otherwise build
    // a response of thousands of copies of the film in memory
    const list = [...new Set(asked)];
    const rows = await selected(c, 'instance', 'frames');
    negotiate(c.req, [
      {
        media: 'multipart/related',
        part: 'application/octet-stream',
        accepts: (p) => p['transfer-syntax'] === undefined || p['transfer-syntax'] === '*' || p['transfer-syntax'] === EXPLICIT_LE,
      },
    ]);
    const frame = await nativeFrame(await c.deps.service.original(rows[0]));
    audited(c, rows, 'frames');
    const m = multipartRelated(
      list.map(() => ({ type: `application/octet-stream; transfer-syntax=${EXPLICIT_LE}`, body: frame, location: `${instanceUrl(c, rows[0])}/frames/1` })),
      'application/octet-stream',
    );
    return { status: 200, body: m.body, type: m.type };
  },
);

// ---- rendered (image/jpeg, image/png) ----

const FUNCTIONS: Record<string, 'linear' | 'linear-exact' | 'sigmoid'> = {
  linear: 'linear',
  linear_exact: 'linear-exact',
  'linear-exact': 'linear-exact',
  sigmoid: 'sigmoid',
};

/** `window=center,width[,function]` (PS3.18 8.3.5.1.4), else the file's own window (or its VOI LUT, else min-max). */
function windowOf(q: Query): WindowPolicy {
  const raw = q.string('window', 100);
  if (raw === undefined) return { kind: 'header' };
  const [c, w, f] = raw.split(',');
  const center = Number(c);
  const width = Number(w);
  const fn = f === undefined ? 'linear' : FUNCTIONS[f.trim().toLowerCase()];
  if (!c?.trim() || !w?.trim() || !Number.isFinite(center) || !Number.isFinite(width) || width < 1 || !fn)
    throw new CxrError('E_BAD_REQUEST', `window must be center,width[,linear|linear_exact|sigmoid] with width >= 1 (got '${raw.slice(0, 40)}')`);
  return { kind: 'explicit', center, width, fn };
}

interface RenderOptions {
  window: WindowPolicy;
  format: 'png' | 'jpeg';
  quality: number;
  viewport?: { width: number; height: number };
}

async function render(bytes: Uint8Array, o: RenderOptions): Promise<Buffer> {
  try {
    const img = await readWindowed(bytes, { window: o.window });
    return await encodeRendered({ width: img.width, height: img.height, channels: 1, pixels: toGray8(img) }, o.format, o.quality, o.viewport);
  } catch (e) {
    // a colour Secondary Capture has no window: its RGB as stored
    if (!isCxrError(e) || e.code !== 'E_NOT_GRAYSCALE') throw e;
    const f = rgbFrame(bytes);
    return encodeRendered({ width: f.width, height: f.height, channels: 3, pixels: f.rgb }, o.format, o.quality, o.viewport);
  }
}

/** `viewport=vw,vh` (PS3.18 8.3.5.1.3): the image scaled to fit inside, never enlarged; source regions are not supported. */
function viewportOf(q: Query, def?: { width: number; height: number }): { width: number; height: number } | undefined {
  const raw = q.string('viewport', 100);
  if (raw === undefined) return def;
  const m = /^(\d{1,4}),(\d{1,4})$/.exec(raw.trim());
  const [width, height] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (!m || width < 1 || height < 1) throw new CxrError('E_BAD_REQUEST', `viewport must be width,height in pixels, 1-9999 (got '${raw.slice(0, 40)}')`);
  return { width, height };
}

/** Query parameters and Accept of a rendered or thumbnail request. */
function renderOptions(c: Ctx, format: 'png' | 'jpeg', viewport?: { width: number; height: number }): RenderOptions {
  const q = new Query(c.req.query);
  return { window: windowOf(q), format, quality: q.int('quality', 90, 1, 100), viewport: viewportOf(q, viewport) };
}

const SINGLE_OFFERS: (Offer & { format: 'jpeg' | 'png' })[] = [
  { media: 'image/jpeg', format: 'jpeg' },
  { media: 'image/png', format: 'png' },
];

const renderedQuery: ParamDoc[] = [
  { name: 'window', description: "center,width[,function] (function linear, linear_exact or sigmoid); default: the file's window", schema: { type: 'string' } },
  { name: 'quality', description: 'JPEG quality 1-100 (default 90)', schema: { type: 'integer' } },
  { name: 'viewport', description: 'width,height: scaled to fit inside, never enlarged', schema: { type: 'string' } },
];

function rendered(level: Level): RouteDef {
  const single = level === 'instance';
  return route(
    level,
    '/rendered',
    `Retrieve ${level} rendered (WADO-RS)`,
    single
      ? "The instance as image/jpeg (default) or image/png by Accept, with the file's window or `window=`."
      : `Every image of the ${level} rendered, as multipart/related; type="image/jpeg" (or image/png); instances without pixel data (reports) are left out.`,
    { description: 'The rendered image(s)', content: single ? { ...binary('image/jpeg'), ...binary('image/png') } : binary('multipart/related') },
    async (c) => {
      // bad parameters are refused before anything is read
      renderOptions(c, 'jpeg');
      const rows = await selected(c, level, 'rendered');
      const offers: (Offer & { format: 'jpeg' | 'png' })[] = single
        ? SINGLE_OFFERS
        : [
            { media: 'multipart/related', part: 'image/jpeg', format: 'jpeg' },
            { media: 'multipart/related', part: 'image/png', format: 'png' },
          ];
      const { offer } = negotiate(c.req, offers);
      const type = `image/${offer.format}`;
      const o = renderOptions(c, offer.format);
      if (single) {
        const body = await render(await c.deps.service.original(rows[0]), o);
        audited(c, rows, 'rendered');
        return { status: 200, body, type };
      }
      const parts = [];
      const shown: StoredInstance[] = [];
      for (const r of rows) {
        try {
          parts.push({ type, body: await render(await c.deps.service.original(r), o), location: `${instanceUrl(c, r)}/rendered` });
          shown.push(r);
        } catch (e) {
          if (!isCxrError(e) || e.code !== 'E_NO_PIXEL_DATA') throw e;
        }
      }
      if (parts.length === 0) throw new CxrError('E_NOT_FOUND', `no image in this ${level} to render`);
      audited(c, shown, 'rendered');
      const m = multipartRelated(parts, type);
      return { status: 200, body: m.body, type: m.type };
    },
    renderedQuery,
  );
}

// ---- thumbnail (image/jpeg, image/png) ----

function thumbnail(level: Level): RouteDef {
  return route(
    level,
    '/thumbnail',
    `Retrieve a ${level} thumbnail (WADO-RS)`,
    `One small image (within 128x128 unless viewport= says otherwise) of ${level === 'instance' ? 'the instance' : `the first image of the ${level}`}, image/jpeg or image/png by Accept.`,
    { description: 'The thumbnail', content: { ...binary('image/jpeg'), ...binary('image/png') } },
    async (c) => {
      // bad parameters are refused before anything is read
      renderOptions(c, 'jpeg');
      const rows = await selected(c, level, 'thumbnail');
      const { offer } = negotiate(c.req, SINGLE_OFFERS);
      const o = renderOptions(c, offer.format, { width: 128, height: 128 });
      for (const r of rows) {
        try {
          const body = await render(await c.deps.service.original(r), o);
          audited(c, [r], 'thumbnail');
          return { status: 200, body, type: `image/${offer.format}` };
        } catch (e) {
          // a report has no image: the next instance may
          if (!isCxrError(e) || e.code !== 'E_NO_PIXEL_DATA') throw e;
        }
      }
      throw new CxrError('E_NOT_FOUND', `no image in this ${level} to show`);
    },
    renderedQuery,
  );
}

export const retrieveInstance = retrieve('instance');

export const wadoRoutes: RouteDef[] = [
  retrieve('study'),
  retrieve('series'),
  retrieveInstance,
  metadata('study'),
  metadata('series'),
  metadata('instance'),
  rendered('study'),
  rendered('series'),
  rendered('instance'),
  thumbnail('study'),
  thumbnail('series'),
  thumbnail('instance'),
  retrieveFrames,
];
