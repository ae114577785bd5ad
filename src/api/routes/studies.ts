/** Workstations post studies; clinicians read them, their images, and record reviews. */
import { CxrError } from '../../errors.js';
import { findPrediction, listReviews } from '../../db/studies.js';
import { recordReview, reviewInput } from '../../service/reviews.js';
import { findVisibleStudy } from '../../service/study-access.js';
import type { StudyRow } from '../../db/entities.js';
import type { AcceptResult } from '../../service/triage.js';
import { Query, readBody, readJsonObject, requireMediaType, UUID_RE, type Reply } from '../http.js';
import { readFormFile } from '../multipart.js';
import { json, ref } from '../openapi-types.js';
import { principalOf, type Ctx, type RouteDef } from '../route.js';
import { reviewView, studyView } from '../views.js';

const idParam = (c: Ctx): string => {
  const id = String(c.req.params.id ?? '');
  if (!UUID_RE.test(id)) throw new CxrError('E_NOT_FOUND', `no study ${id}`);
  c.studyId = id.toLowerCase();
  return c.studyId;
};

/** The study named by the path, when the caller may see it (service/study-access.ts); 404 alike otherwise. */
async function loadStudy(c: Ctx): Promise<StudyRow> {
  const id = idParam(c);
  const study = await findVisibleStudy(c.deps.ds, id, principalOf(c));
  if (!study) throw new CxrError('E_NOT_FOUND', `no study ${id}`);
  return study;
}

/** `status` may depend on the study's state: it is decided on the same read as the body, so the two always agree. */
async function viewReply(c: Ctx, id: string, status: number | ((s: StudyRow) => number)): Promise<Reply> {
  const v = await c.deps.service.view(id);
  if (!v) throw new CxrError('E_NOT_FOUND', `no study ${id}`);
  return {
    status: typeof status === 'number' ? status : status(v.study),
    json: studyView(v, { withReviews: principalOf(c).role !== 'workstation' }),
    headers: { Location: `/v1/studies/${id}` },
  };
}

const errors = { '400': { description: 'Bad request', content: json(ref('Error')) } };

export const postStudy: RouteDef = {
  method: 'post',
  path: '/v1/studies',
  roles: ['workstation'],
  audit: 'study.create',
  doc: {
    summary: 'Submit a study',
    tags: ['studies'],
    description:
      'One DICOM Part 10 instance, as the whole body (application/dicom) or as the file part of a multipart/form-data upload. ' +
      'The instance is validated (including decoding its pixels), stored durably and queued for inference. Re-posting a known ' +
      'SOP Instance UID returns the existing study (200) instead of creating a duplicate; an instance another workstation sent ' +
      'is refused (409) without details of that study.',
    query: [{ name: 'wait', description: 'wait for the report (up to CXR_WAIT_TIMEOUT_S) and return it', schema: { type: 'boolean' } }],
    requestBody: {
      required: true,
      content: {
        'application/dicom': { schema: { type: 'string', format: 'binary' } },
        'multipart/form-data': { schema: { type: 'object', properties: { file: { type: 'string', format: 'binary' } }, required: ['file'] } },
      },
    },
    responses: {
      '200': { description: 'Known instance (re-post), or the finished report with ?wait=true', content: json(ref('Study')) },
      '202': {
        description: 'Accepted and queued; poll Location',
        content: json(ref('StudyAccepted')),
        headers: { Location: { description: 'the study resource', schema: { type: 'string' } } },
      },
      ...errors,
      '409': { description: 'This SOP Instance UID was received before with different content, or from another sender', content: json(ref('Error')) },
      '413': { description: 'Body larger than CXR_MAX_BODY_MB, or an image too large to decode', content: json(ref('Error')) },
      '415': { description: 'Content-Type is not application/dicom or multipart/form-data', content: json(ref('Error')) },
      '422': { description: 'Not a usable DICOM instance; the code says why (E_NOT_DICOM, E_TRUNCATED, ...)', content: json(ref('Error')) },
      '503': { description: 'Inference queue full; retry after the Retry-After delay', content: json(ref('Error')) },
      '507': { description: 'The data directory is full (E_STORAGE_FULL); retry after the Retry-After delay', content: json(ref('Error')) },
    },
  },
  async handle(c) {
    const t = requireMediaType(c.req, ['application/dicom', 'multipart/form-data']);
    const wait = new Query(c.req.query).bool('wait') ?? false;
    const max = c.deps.config.maxBodyBytes;
    await c.deps.service.refuseIfQueueFull();
    const bytes = t === 'application/dicom' ? await readBody(c.req, max) : (await readFormFile(c.req, max)).bytes;
    const detail = (r: AcceptResult) => ({ sopInstanceUid: r.study.sopInstanceUid, sha256: r.study.sha256, duplicate: !r.created });
    // A new study's audit row commits with it: never a study without its row (nor a row without its study).
    const res = await c.deps.service.accept(bytes, principalOf(c).sub, (m, r) =>
      c.auditIn(m, { action: 'study.create', studyId: r.study.id, outcome: 'ok', detail: { ...detail(r), wait, method: 'POST' } }),
    );
    const id = res.study.id;
    c.studyId = id;
    c.detail = detail(res);
    if (!res.created) return viewReply(c, id, 200);
    if (wait) {
      // just accepted, so queued: a worker here wakes the wait at once, one elsewhere is polled for
      await c.deps.service.waitForResult(id, c.deps.config.waitTimeoutMs, true);
      // a worker (here or in another process) may finish the study at any moment
      return viewReply(c, id, (s) => (s.status === 'queued' ? 202 : 200));
    }
    return {
      status: 202,
      json: { id, status: 'queued', sopInstanceUid: res.study.sopInstanceUid, location: `/v1/studies/${id}` },
      headers: { Location: `/v1/studies/${id}` },
    };
  },
};

export const getStudy: RouteDef = {
  method: 'get',
  path: '/v1/studies/:id',
  studyParam: true,
  roles: ['clinician', 'workstation'],
  audit: 'study.read',
  doc: {
    summary: 'Read a study and its report',
    tags: ['studies'],
    description: 'Clinicians read any study with its reviews; a workstation reads the studies it submitted (status and report, no reviews).',
    responses: { '200': { description: 'The study', content: json(ref('Study')) }, '404': { description: 'No such study', content: json(ref('Error')) } },
  },
  async handle(c) {
    const study = await loadStudy(c);
    return viewReply(c, study.id, 200);
  },
};

function imageRoute(kind: 'image' | 'mask' | 'heatmap', summary: string): RouteDef {
  return {
    method: 'get',
    path: `/v1/studies/:id/${kind}.png`,
    studyParam: true,
    roles: ['clinician'],
    audit: 'study.image.read',
    doc: {
      summary,
      tags: ['studies'],
      description:
        "Drawn at the image's native size from the stored original and what was stored with its prediction (window, lung mask, CAM, lung box); no model runs, so the overlay is the one behind the decision.",
      responses: {
        '200': { description: 'PNG image', content: { 'image/png': { schema: { type: 'string', format: 'binary' } } } },
        '404': { description: 'No such study', content: json(ref('Error')) },
        '409': { description: 'The study has no prediction yet', content: json(ref('Error')) },
      },
    },
    async handle(c) {
      const study = await loadStudy(c);
      c.detail = { image: kind };
      const prediction = await findPrediction(c.deps.ds, study.id);
      if (!prediction) throw new CxrError('E_CONFLICT', `study ${study.id} has no prediction yet (status ${study.status})`);
      const images = await c.deps.service.images(study, prediction);
      const m = (prediction.report as { models?: Record<string, { name: string; version: string }> }).models;
      return {
        status: 200,
        body: images[kind],
        type: 'image/png',
        headers: m
          ? ({ 'X-Cxr-Models': `${m.segmenter.name}@${m.segmenter.version}, ${m.classifier.name}@${m.classifier.version}` } as Record<string, string>)
          : {},
      };
    },
  };
}

export const getImage = imageRoute('image', 'Read the windowed image');
export const getMask = imageRoute('mask', 'Read the lung mask overlay');
export const getHeatmap = imageRoute('heatmap', 'Read the class activation heatmap overlay');

export const postReview: RouteDef = {
  method: 'post',
  path: '/v1/studies/:id/reviews',
  studyParam: true,
  roles: ['clinician'],
  audit: 'review.create',
  doc: {
    summary: 'Record a review',
    tags: ['reviews'],
    description:
      "A clinician's verdict on the study's prediction: agree or disagree, optionally their own reading (label) and a note. " +
      'To amend a review, post a new one with `amends` set to its id: the history keeps both and the audit log says which amended which.',
    requestBody: { required: true, content: json(ref('ReviewRequest')) },
    responses: {
      '201': { description: 'Recorded', content: json(ref('Review')) },
      ...errors,
      '404': { description: 'No such study', content: json(ref('Error')) },
      '409': { description: 'The study has no prediction to review yet', content: json(ref('Error')) },
      '415': { description: 'Content-Type is not application/json', content: json(ref('Error')) },
    },
  },
  async handle(c) {
    const study = await loadStudy(c);
    const input = reviewInput(await readJsonObject(c.req));
    const review = await recordReview(c.deps.ds, study, principalOf(c).sub, input, (m, r) =>
      c.auditIn(m, {
        action: input.amendsId === null ? 'review.create' : 'review.amend',
        studyId: study.id,
        outcome: 'ok',
        detail: { reviewId: r.id, verdict: r.verdict, label: r.label, amends: r.amendsId, status: 201 },
      }),
    );
    return { status: 201, json: reviewView(review), headers: { Location: `/v1/studies/${study.id}/reviews` } };
  },
};

export const getReviews: RouteDef = {
  method: 'get',
  path: '/v1/studies/:id/reviews',
  studyParam: true,
  roles: ['clinician', 'auditor'],
  audit: 'review.read',
  doc: {
    summary: 'List the reviews of a study',
    tags: ['reviews'],
    responses: {
      '200': { description: 'Reviews, oldest first', content: json({ type: 'object', properties: { items: { type: 'array', items: ref('Review') } } }) },
      '404': { description: 'No such study', content: json(ref('Error')) },
    },
  },
  async handle(c) {
    const study = await loadStudy(c);
    return { status: 200, json: { items: (await listReviews(c.deps.ds, study.id)).map(reviewView) } };
  },
};

export const studyRoutes = [postStudy, getStudy, getImage, getMask, getHeatmap, postReview, getReviews];
