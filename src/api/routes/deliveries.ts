/**
 * Where a study's AI result objects (SR, Secondary Capture) stand: made or not, and for each
 * configured destination pending (with attempts and the next try), delivered, or failed
 * with the reason. The path names the study by any of its instance ids (as the other study
 * routes) or by its StudyInstanceUID.
 */
import { studyDeliveries, studyHeld, type DeliveryRecord } from '../../db/results.js';
import { findStudy } from '../../db/studies.js';
import { isValidUid } from '../../dicom/index.js';
import { CxrError } from '../../errors.js';
import { canSee } from '../../service/study-access.js';
import { UUID_RE } from '../http.js';
import { json, ref } from '../openapi-types.js';
import { principalOf, type Ctx, type RouteDef } from '../route.js';

async function studyUidOf(c: Ctx): Promise<string> {
  const raw = String(c.req.params.id ?? '');
  if (UUID_RE.test(raw)) {
    const study = await findStudy(c.deps.ds, raw.toLowerCase());
    if (!study || !canSee(study, principalOf(c))) throw new CxrError('E_NOT_FOUND', `no study ${raw}`);
    c.studyId = study.id;
    return study.studyInstanceUid;
  }
  const p = principalOf(c);
  if (!isValidUid(raw) || !(await studyHeld(c.deps.ds, raw, p.role === 'workstation' ? p.sub : undefined)))
    throw new CxrError('E_NOT_FOUND', `no study ${raw}`);
  return raw;
}

function deliveryView(d: DeliveryRecord) {
  return {
    kind: d.kind,
    sopInstanceUid: d.sopInstanceUid,
    seriesInstanceUid: d.seriesInstanceUid,
    sourceStudyId: d.sourceId,
    built: d.built,
    buildError: d.buildError,
    destination: d.destination,
    status: d.status,
    attempts: d.attempts,
    maxAttempts: d.maxAttempts,
    nextAttemptAt: d.status === 'pending' ? (d.nextAttemptAt?.toISOString() ?? null) : null,
    lastAttemptAt: d.lastAttemptAt?.toISOString() ?? null,
    deliveredAt: d.deliveredAt?.toISOString() ?? null,
    error: d.lastErrorCode ? { code: d.lastErrorCode, message: d.lastError } : null,
  };
}

export const getDeliveries: RouteDef = {
  method: 'get',
  path: '/v1/studies/:id/deliveries',
  studyParam: true,
  roles: ['clinician', 'workstation'],
  audit: 'study.deliveries.read',
  doc: {
    summary: "Delivery status of a study's AI result objects",
    tags: ['studies'],
    description:
      'The SR and Secondary Capture made for each scored image of the study, and for each configured destination ' +
      '(CXR_RESULTS_STOW_URL, CXR_RESULTS_AE) whether it is pending, delivered or failed, with attempts and the last error. ' +
      '`id` is a study id (any instance of the study) or the StudyInstanceUID. A workstation sees the results of what it sent.',
    responses: {
      '200': { description: 'The study and its deliveries', content: json(ref('Deliveries')) },
      '404': { description: 'No such study (or not one this caller sent)', content: json(ref('Error')) },
    },
  },
  async handle(c) {
    const uid = await studyUidOf(c);
    const p = principalOf(c);
    const items = await studyDeliveries(c.deps.ds, uid, p.role === 'workstation' ? p.sub : undefined);
    const counts = { pending: 0, delivered: 0, failed: 0 };
    for (const d of items) if (d.status) counts[d.status]++;
    return { status: 200, json: { studyInstanceUid: uid, counts, items: items.map(deliveryView) } };
  },
};

export const deliveryRoutes = [getDeliveries];
