/**
 * DICOMweb STOW-RS (PS3.18 10.5): several instances in one multipart/related request, each
 * stored or refused on its own, answered with a DICOM JSON dataset listing both.
 */
import { CxrError, isCxrError, type ErrorCode } from '../../errors.js';
import type { AuditEntry } from '../../db/audit.js';
import { readMetadata } from '../../dicom/index.js';
import { BUSY_RETRY_AFTER_S, readBody, type Reply } from '../http.js';
import { parseContentType, splitMultipart } from '../multipart.js';
import { json, ref } from '../openapi-types.js';
import { principalOf, type Ctx, type RouteDef } from '../route.js';
import { isStorageFullError, STORAGE_RETRY_AFTER_S, storageFullError } from '../../service/storage.js';
import type { AcceptResult } from '../../service/triage.js';

/** Failure Reason (0008,1197) values, PS3.18 table 10.5.3-2 and PS3.4 annex C. */
export const FAILURE_REASON = {
  processingFailure: 0x0110,
  duplicateSopInstance: 0x0111,
  outOfResources: 0xa700,
  cannotUnderstand: 0xc000,
  transferSyntaxNotSupported: 0xc122,
} as const;

export function failureReasonFor(code: ErrorCode): number {
  switch (code) {
    case 'E_QUEUE_FULL':
    case 'E_STORAGE_FULL':
      return FAILURE_REASON.outOfResources;
    case 'E_CONFLICT':
      return FAILURE_REASON.duplicateSopInstance;
    case 'E_UNSUPPORTED_SYNTAX':
      return FAILURE_REASON.transferSyntaxNotSupported;
    case 'E_INTERNAL':
    case 'E_BACKEND':
      return FAILURE_REASON.processingFailure;
    default:
      return FAILURE_REASON.cannotUnderstand;
  }
}

type DicomJsonItem = Record<string, { vr: string; Value?: unknown[] }>;

/**
 * Instances per STOW-RS request: a chest study is a handful of images; a request of
 * thousands of tiny parts is refused whole (413), before any is stored or audited.
 */
export const MAX_PARTS_PER_REQUEST = 256;

/** The media type a part or the `type` parameter names, without its own parameters (transfer-syntax). */
function essence(v: string | undefined): string | undefined {
  return v?.split(';')[0].trim().toLowerCase();
}

const uidOf = (e: CxrError, key: string): string | null => (typeof e.details?.[key] === 'string' ? (e.details[key] as string) : null);

type StowAudit = Omit<AuditEntry, 'actor' | 'role' | 'requestId'>;

/** FailureReason (0008,1197) and our stable code in Error Comment (0000,0902), so a sender can act on it. */
function failureItem(e: CxrError, item: DicomJsonItem = {}): DicomJsonItem {
  item['00081197'] = { vr: 'US', Value: [failureReasonFor(e.code)] };
  item['00000902'] = { vr: 'LO', Value: [`${e.code}: ${e.message}`.slice(0, 64)] };
  return item;
}

/**
 * The instance's UIDs, for the failure item of one whose processing failed unexpectedly (the
 * service names only the instances it refuses): read again on this rare path only; none when
 * even that fails.
 */
function uidsOf(bytes: Uint8Array): Record<string, string | null> {
  try {
    const meta = readMetadata(bytes);
    return { sopClassUid: meta.sopClassUid, sopInstanceUid: meta.sopInstanceUid };
  } catch {
    return {};
  }
}

/**
 * What an unexpected error (a bug, a database hiccup for this one instance) is to the sender: a
 * Processing Failure (0x0110, E_INTERNAL) of that instance alone, as over C-STORE, and the
 * instances before and after it keep their own answers (PS3.18 10.5.3). Its message and stack
 * go to the log, never into the answer. A database out of room stays E_STORAGE_FULL, as the API
 * answers it everywhere else (Out of Resources; 507 when no instance was stored).
 */
function unexpectedFailure(c: Ctx, e: unknown, part: number, bytes: Uint8Array): CxrError {
  const uids = uidsOf(bytes);
  if (isStorageFullError(e)) {
    const full = storageFullError('the database has no room');
    return new CxrError(full.code, full.message, { ...full.details, ...uids });
  }
  c.deps.log.error('stow-rs instance failed', { requestId: c.requestId, part, error: String((e as Error)?.stack ?? e) });
  return new CxrError('E_INTERNAL', 'the instance could not be stored', uids);
}

/**
 * An audit row of the handler's own, for what stored nothing (a refused instance, or a re-send
 * found before any transaction): appended in a transaction of its own, as it goes.
 */
function auditAlone(c: Ctx, row: StowAudit): Promise<void> {
  return c.deps.ds.transaction((m) => c.auditIn(m, row));
}

/**
 * With the inference queue already full nothing could be stored: the request is refused before
 * its body is read (the check POST /v1/studies makes), or a burst of STOW-RS requests would
 * buffer every body only to refuse it. No instance was read, so none can be named: the refusal
 * is an item of Other Failures Sequence (0008,119A), with the status and code of a request whose
 * every instance met a full queue (503 E_QUEUE_FULL, Retry-After). The connection closes after
 * the answer rather than drain the body (route.ts).
 */
async function refusedUnread(c: Ctx): Promise<Reply | null> {
  try {
    await c.deps.service.refuseIfQueueFull();
    return null;
  } catch (e) {
    if (!isCxrError(e) || e.code !== 'E_QUEUE_FULL') throw e;
    c.audits.push({ action: 'study.create', studyId: null, outcome: e.code, detail: { via: 'stow-rs', bodyRead: false } });
    return {
      status: 503,
      json: { '0008119A': { vr: 'SQ', Value: [failureItem(e)] } },
      type: 'application/dicom+json',
      headers: { 'Retry-After': BUSY_RETRY_AFTER_S },
      code: e.code,
    };
  }
}

function refItem(sopClass: string | null, sopInstance: string | null): DicomJsonItem {
  const item: DicomJsonItem = {};
  if (sopClass) item['00081150'] = { vr: 'UI', Value: [sopClass] };
  if (sopInstance) item['00081155'] = { vr: 'UI', Value: [sopInstance] };
  return item;
}

/** The WADO-RS URL of a stored instance (or of its study), absolute on the host the request came to. */
export function wadoUrl(base: string, study: string, series?: string, sop?: string): string {
  let url = `${base}/dicomweb/studies/${study}`;
  if (series && sop) url += `/series/${series}/instances/${sop}`;
  return url;
}

export function baseUrl(req: { protocol: string; get(name: string): string | undefined }): string {
  return `${req.protocol}://${req.get('host') ?? 'localhost'}`;
}

export const stow: RouteDef = {
  method: 'post',
  path: '/dicomweb/studies',
  roles: ['workstation'],
  audit: 'study.create',
  basicAuth: true,
  doc: {
    summary: 'Store instances (STOW-RS)',
    tags: ['dicomweb'],
    description:
      'multipart/related; type="application/dicom" with one DICOM instance per part. Each instance is accepted or refused on its own; ' +
      'the response lists stored instances in ReferencedSOPSequence (0008,1199) and refused ones in FailedSOPSequence (0008,1198) ' +
      'with a FailureReason (0008,1197); an instance whose processing failed unexpectedly is a Processing Failure (0x0110, E_INTERNAL) of its own. ' +
      '200: all stored; 202: some stored; 409: none stored.',
    requestBody: {
      required: true,
      content: { 'multipart/related': { schema: { type: 'string', format: 'binary', description: 'type="application/dicom"; one instance per part' } } },
    },
    responses: {
      '200': { description: 'All instances stored', content: { 'application/dicom+json': { schema: ref('DicomJson') } } },
      '202': { description: 'Some instances stored, some refused', content: { 'application/dicom+json': { schema: ref('DicomJson') } } },
      '400': { description: 'Broken multipart framing', content: json(ref('Error')) },
      '409': { description: 'No instance stored', content: { 'application/dicom+json': { schema: ref('DicomJson') } } },
      '413': { description: `Body larger than CXR_MAX_BODY_MB, or more than ${MAX_PARTS_PER_REQUEST} parts`, content: json(ref('Error')) },
      '415': { description: 'Not multipart/related; type="application/dicom"', content: json(ref('Error')) },
      '503': {
        description:
          'Nothing stored because the inference queue is full (E_QUEUE_FULL); retry after the Retry-After delay. Refused before the body is read ' +
          'when the queue is already full: then no instance is named, the refusal is in OtherFailuresSequence (0008,119A), and the connection closes',
        content: { 'application/dicom+json': { schema: ref('DicomJson') } },
      },
      '507': {
        description: 'Nothing stored because the data directory is full (E_STORAGE_FULL); retry after the Retry-After delay',
        content: { 'application/dicom+json': { schema: ref('DicomJson') } },
      },
    },
  },
  async handle(c): Promise<Reply> {
    const ct = parseContentType(c.req.headers['content-type']);
    // Liberal in what real clients send: `type` quoted or not, with a transfer-syntax of its own, or absent.
    const type = essence(ct?.params.get('type')) ?? 'application/dicom';
    if (ct?.type !== 'multipart/related' || type !== 'application/dicom') {
      throw new CxrError('E_UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be multipart/related; type="application/dicom"');
    }
    const boundary = ct.params.get('boundary');
    if (!boundary) throw new CxrError('E_BAD_REQUEST', 'multipart/related needs a boundary parameter');
    const refused = await refusedUnread(c);
    if (refused) return refused;
    const parts = splitMultipart(await readBody(c.req, c.deps.config.maxBodyBytes), boundary, MAX_PARTS_PER_REQUEST);
    if (parts.length === 0) throw new CxrError('E_BAD_REQUEST', 'the request holds no instances');
    const stored: DicomJsonItem[] = [];
    const failed: DicomJsonItem[] = [];
    const studies = new Set<string>();
    const failureCodes: ErrorCode[] = [];
    const actor = principalOf(c).sub;
    const target = typeof c.req.params.study === 'string' ? c.req.params.study : null;
    const base = baseUrl(c.req);
    // what a request that fails midway is audited with (its own row, route.ts), beside the rows of what it stored
    c.detail = { parts: parts.length, stored: 0, failed: 0 };
    for (const [index, part] of parts.entries()) {
      const partType = essence(part.headers.get('content-type')) ?? 'application/dicom';
      const stowed = (r: AcceptResult): StowAudit => ({
        action: 'study.create',
        studyId: r.study.id,
        outcome: 'ok',
        detail: { part: index + 1, sopInstanceUid: r.study.sopInstanceUid, duplicate: !r.created, via: 'stow-rs' },
      });
      // A stored instance's audit row commits with it, as over POST /v1/studies and C-STORE: never an
      // instance without its row, whatever fails after it (a later instance, the process, the audit log).
      let auditedWithIt = false;
      let alone: StowAudit | null = null;
      try {
        if (partType !== 'application/dicom') throw new CxrError('E_UNSUPPORTED_MEDIA_TYPE', `part ${index + 1} is ${partType}, not application/dicom`);
        // with a study in the URL, every instance must belong to it (PS3.18 10.5.1): checked on accept's one parse
        const res = await c.deps.service.accept(
          part.body,
          actor,
          async (m, r) => {
            await c.auditIn(m, stowed(r));
            auditedWithIt = true;
          },
          target ?? undefined,
        );
        const item = refItem(res.study.sopClassUid, res.study.sopInstanceUid);
        // RetrieveURL (0008,1190): where WADO-RS returns the instance as stored.
        item['00081190'] = { vr: 'UR', Value: [wadoUrl(base, res.study.studyInstanceUid, res.study.seriesInstanceUid, res.study.sopInstanceUid)] };
        studies.add(res.study.studyInstanceUid);
        stored.push(item);
        // a re-send found before any transaction stored nothing and was not audited in one
        if (!auditedWithIt) alone = stowed(res);
      } catch (thrown) {
        // a refusal, or an unexpected error of this instance alone: a failed accept's transaction (the
        // study, its job, the row appended inside it) did not commit, and the accept removed the file it wrote
        const e = isCxrError(thrown) ? thrown : unexpectedFailure(c, thrown, index + 1, part.body);
        // the service names the instance when it got that far; the part is never parsed twice for a refusal
        failed.push(failureItem(e, refItem(uidOf(e, 'sopClassUid'), uidOf(e, 'sopInstanceUid'))));
        failureCodes.push(e.code);
        if (e.code === 'E_STORAGE_FULL') c.deps.storage?.noteFull(e);
        alone = {
          action: 'study.create',
          studyId: (e.details?.studyId as string | undefined) ?? null,
          outcome: e.code,
          detail: { part: index + 1, sopInstanceUid: uidOf(e, 'sopInstanceUid'), via: 'stow-rs' },
        };
      }
      c.detail = { parts: parts.length, stored: stored.length, failed: failed.length };
      if (alone) await auditAlone(c, alone);
    }
    const body: DicomJsonItem = {};
    // The study's RetrieveURL when the request stored into exactly one study (the usual case).
    if (studies.size === 1) body['00081190'] = { vr: 'UR', Value: [wadoUrl(base, [...studies][0])] };
    if (stored.length > 0) body['00081199'] = { vr: 'SQ', Value: stored };
    if (failed.length > 0) body['00081198'] = { vr: 'SQ', Value: failed };
    let status = 200;
    const headers: Record<string, string> = {};
    if (stored.length === 0) {
      const storageFull = failureCodes.every((code) => code === 'E_STORAGE_FULL');
      status = storageFull ? 507 : failureCodes.every((code) => code === 'E_QUEUE_FULL') ? 503 : 409;
      if (status === 503) headers['Retry-After'] = BUSY_RETRY_AFTER_S;
      if (storageFull) headers['Retry-After'] = String(STORAGE_RETRY_AFTER_S);
    } else if (failed.length > 0) {
      status = 202;
    }
    return { status, json: body, type: 'application/dicom+json', headers, code: status >= 400 ? failureCodes[0] : undefined };
  },
};

/** STOW-RS into one study: the same as /dicomweb/studies, refusing instances of other studies. */
export const stowStudy: RouteDef = {
  ...stow,
  path: '/dicomweb/studies/:study',
  doc: {
    ...stow.doc,
    summary: 'Store instances of one study (STOW-RS)',
    description: `${stow.doc.description} An instance of another study than the one in the URL is refused (E_BAD_REQUEST, FailureReason 0xC000).`,
  },
};
