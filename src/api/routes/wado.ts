/**
 * DICOMweb WADO-RS (PS3.18 10.4) over what the service holds: an instance as it was received,
 * so the RetrieveURL a STOW-RS response names can be followed. A workstation retrieves what it
 * sent; a clinician any instance.
 */
import { randomBytes } from 'node:crypto';
import { findInstanceBySop } from '../../db/results.js';
import { CxrError } from '../../errors.js';
import { canSee } from '../../service/study-access.js';
import type { Reply } from '../http.js';
import { json, ref } from '../openapi-types.js';
import { principalOf, type RouteDef } from '../route.js';

export const retrieveInstance: RouteDef = {
  method: 'get',
  path: '/dicomweb/studies/:study/series/:series/instances/:instance',
  roles: ['clinician', 'workstation'],
  audit: 'study.retrieve',
  basicAuth: true,
  doc: {
    summary: 'Retrieve an instance (WADO-RS)',
    tags: ['dicomweb'],
    description: 'multipart/related; type="application/dicom" with the stored instance, byte for byte as received.',
    responses: {
      '200': { description: 'The instance', content: { 'multipart/related': { schema: { type: 'string', format: 'binary' } } } },
      '404': { description: 'No such instance (or not one this caller sent)', content: json(ref('Error')) },
    },
  },
  async handle(c): Promise<Reply> {
    const { study: studyUid, series, instance } = c.req.params as Record<string, string>;
    // originals and the service's own result objects (SR, Secondary Capture) alike
    const row = await findInstanceBySop(c.deps.ds, String(instance));
    // absent, in another study or series, or another sender's: the same 404
    if (!row || row.studyInstanceUid !== studyUid || row.seriesInstanceUid !== series || !canSee(row, principalOf(c))) {
      throw new CxrError('E_NOT_FOUND', 'no such instance');
    }
    c.studyId = row.id;
    const bytes = await c.deps.service.original(row);
    const boundary = `cxr-${randomBytes(12).toString('hex')}`;
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${bytes.length}\r\n\r\n`),
      bytes,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    return { status: 200, body, type: `multipart/related; type="application/dicom"; boundary=${boundary}` };
  },
};

export const wadoRoutes = [retrieveInstance];
