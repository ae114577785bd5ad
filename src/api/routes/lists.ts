/** The clinician's worklist and the auditor's views of history: predictions, CSV, models, audit log. */
import { listAudit, verifyAuditChain } from '../../db/audit.js';
import type { AuditRow } from '../../db/entities.js';
import { listModels } from '../../db/models.js';
import { listPredictions, type PredictionFilters, type PredictionRecord } from '../../db/predictions.js';
import { worklist, type WorklistKey } from '../../db/studies.js';
import { toCsv } from '../csv.js';
import { decodeCursor, encodeCursor, Query, type Reply } from '../http.js';
import { isSeqText } from '../input.js';
import { json, ref, type ParamDoc } from '../openapi-types.js';
import type { RouteDef } from '../route.js';
import { modelView, studyLinks } from '../views.js';

const limitParam: ParamDoc = { name: 'limit', description: 'page size (1-200, default 50)', schema: { type: 'integer', minimum: 1, maximum: 200 } };
const cursorParam: ParamDoc = { name: 'cursor', description: 'nextCursor of the previous page', schema: { type: 'string' } };
const boolParam = (name: string, description: string): ParamDoc => ({ name, description, schema: { type: 'boolean' } });
const badRequest = { '400': { description: 'Invalid query parameter or cursor', content: json(ref('Error')) } };

function isWorklistKey(v: unknown): v is WorklistKey {
  const k = v as WorklistKey;
  return typeof v === 'object' && v !== null && typeof k.flagged === 'boolean' && typeof k.rank === 'number' && Number.isFinite(k.rank) && isSeqText(k.seq);
}

export const getWorklist: RouteDef = {
  method: 'get',
  path: '/v1/worklist',
  roles: ['clinician'],
  audit: 'worklist.read',
  doc: {
    summary: 'Read the worklist',
    tags: ['worklist'],
    description:
      'Scored studies, flagged first, then by probability (highest first). Studies that could not be scored count as flagged and come first. Keyset pagination.',
    query: [
      boolParam('flagged', 'only flagged (true) or only unflagged (false) studies'),
      { name: 'decision', description: 'positive or negative', schema: { type: 'string', enum: ['positive', 'negative'] } },
      boolParam('reviewed', 'only reviewed (true) or unreviewed (false) studies'),
      { name: 'status', description: 'scored or failed', schema: { type: 'string', enum: ['scored', 'failed'] } },
      { name: 'from', description: 'received at or after (ISO 8601)', schema: { type: 'string', format: 'date-time' } },
      { name: 'to', description: 'received before (ISO 8601)', schema: { type: 'string', format: 'date-time' } },
      { name: 'model', description: 'classifier version, or name@version', schema: { type: 'string' } },
      limitParam,
      cursorParam,
    ],
    responses: { '200': { description: 'One page', content: json(ref('WorklistPage')) }, ...badRequest },
  },
  async handle(c) {
    const q = new Query(c.req.query);
    const limit = q.int('limit', 50, 1, 200);
    const filters = {
      flagged: q.bool('flagged'),
      decision: q.oneOf('decision', ['positive', 'negative'] as const),
      reviewed: q.bool('reviewed'),
      status: q.oneOf('status', ['scored', 'failed'] as const),
      from: q.date('from'),
      to: q.date('to'),
      model: q.string('model', 200),
    };
    const after = decodeCursor(q.string('cursor', 400), isWorklistKey);
    const rows = await worklist(c.deps.ds, filters, after, limit + 1);
    const page = rows.slice(0, limit);
    // which studies a clinician was shown is part of the access record
    c.detail = { count: page.length, studyIds: page.map((r) => r.studyId), filters: definedOnly(filters) };
    return {
      status: 200,
      json: {
        items: page.map(({ key: _key, receivedAt, ...r }) => ({ ...r, receivedAt: receivedAt.toISOString(), links: studyLinks(r.studyId) })),
        nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1].key) : null,
      },
    };
  },
};

const predictionQuery: ParamDoc[] = [
  { name: 'from', description: 'predicted at or after (ISO 8601)', schema: { type: 'string', format: 'date-time' } },
  { name: 'to', description: 'predicted before (ISO 8601)', schema: { type: 'string', format: 'date-time' } },
  { name: 'model', description: 'segmenter or classifier version, name@version or version', schema: { type: 'string' } },
  { name: 'decision', description: 'positive or negative', schema: { type: 'string', enum: ['positive', 'negative'] } },
  boolParam('flagged', 'flagged or not'),
  boolParam('reviewed', 'reviewed or not'),
  { name: 'agreement', description: "the latest review's verdict", schema: { type: 'string', enum: ['agree', 'disagree'] } },
];

function predictionFilters(q: Query): PredictionFilters {
  const f: PredictionFilters = {
    from: q.date('from'),
    to: q.date('to'),
    model: q.string('model'),
    decision: q.oneOf('decision', ['positive', 'negative'] as const),
    flagged: q.bool('flagged'),
    reviewed: q.bool('reviewed'),
    agreement: q.oneOf('agreement', ['agree', 'disagree'] as const),
  };
  return f;
}

function predictionJson(r: PredictionRecord) {
  return {
    ...r,
    receivedAt: r.receivedAt.toISOString(),
    predictedAt: r.predictedAt.toISOString(),
    lastReviewedAt: r.lastReviewedAt?.toISOString() ?? null,
  };
}

function definedOnly(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

export const getPredictions: RouteDef = {
  method: 'get',
  path: '/v1/predictions',
  roles: ['auditor'],
  audit: 'predictions.read',
  doc: {
    summary: 'Read prediction history',
    tags: ['audit'],
    description: 'Every prediction with its study, model versions and latest review, newest first.',
    query: [...predictionQuery, limitParam, cursorParam],
    responses: { '200': { description: 'One page', content: json(ref('PredictionPage')) }, ...badRequest },
  },
  async handle(c) {
    const q = new Query(c.req.query);
    const limit = q.int('limit', 50, 1, 200);
    const f = predictionFilters(q);
    const before = decodeCursor(q.string('cursor', 200), isSeqText);
    const rows = await listPredictions(c.deps.ds, f, before, limit + 1);
    const page = rows.slice(0, limit);
    c.detail = {
      count: page.length,
      studyIds: page.map((r) => r.studyId),
      filters: definedOnly({ ...f, from: f.from?.toISOString(), to: f.to?.toISOString() }),
    };
    return {
      status: 200,
      json: { items: page.map(predictionJson), nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1].predictionId) : null },
    };
  },
};

const CSV_COLUMNS: (keyof PredictionRecord)[] = [
  'predictionId',
  'studyId',
  'studyInstanceUid',
  'sopInstanceUid',
  'patientPseudonym',
  'modality',
  'viewPosition',
  'receivedAt',
  'predictedAt',
  'segmenter',
  'classifier',
  'probability',
  'threshold',
  'targetRecall',
  'decision',
  'flagged',
  'flagReasons',
  'qcFlags',
  'ttaViews',
  'ttaSpread',
  'lungAreaFraction',
  'reviewCount',
  'lastVerdict',
  'lastReviewer',
  'lastReviewedAt',
];

/** At most this many rows per export: a bounded response; narrow the time range for more. */
export const CSV_MAX_ROWS = 100_000;

export const getPredictionsCsv: RouteDef = {
  method: 'get',
  path: '/v1/predictions.csv',
  roles: ['auditor'],
  audit: 'predictions.export',
  doc: {
    summary: 'Export prediction history as CSV',
    tags: ['audit'],
    description: `Same filters as /v1/predictions, all matching rows (up to ${CSV_MAX_ROWS}), newest first. X-Cxr-Truncated: true when capped.`,
    query: predictionQuery,
    responses: { '200': { description: 'CSV with a header row', content: { 'text/csv': { schema: { type: 'string' } } } }, ...badRequest },
  },
  async handle(c): Promise<Reply> {
    const f = predictionFilters(new Query(c.req.query));
    const rows: PredictionRecord[] = [];
    let before: string | null = null;
    for (;;) {
      const batch = await listPredictions(c.deps.ds, f, before, 1000);
      rows.push(...batch);
      if (batch.length < 1000 || rows.length >= CSV_MAX_ROWS + 1) break;
      before = batch[batch.length - 1].predictionId;
    }
    const truncated = rows.length > CSV_MAX_ROWS;
    const out = rows.slice(0, CSV_MAX_ROWS);
    // which studies were exported is part of the access record, as for the JSON pages
    c.detail = {
      count: out.length,
      studyIds: out.map((r) => r.studyId),
      truncated,
      filters: definedOnly({ ...f, from: f.from?.toISOString(), to: f.to?.toISOString() }),
    };
    return {
      status: 200,
      body: toCsv(CSV_COLUMNS, out),
      type: 'text/csv; charset=utf-8',
      headers: { 'Content-Disposition': 'attachment; filename="predictions.csv"', 'X-Cxr-Truncated': String(truncated) },
    };
  },
};

export const getModels: RouteDef = {
  method: 'get',
  path: '/v1/models',
  roles: ['auditor', 'admin'],
  audit: 'models.read',
  doc: {
    summary: 'List model versions',
    tags: ['models'],
    responses: { '200': { description: 'Every model version that made or can make predictions', content: json(ref('ModelList')) } },
  },
  async handle(c) {
    return { status: 200, json: { items: (await listModels(c.deps.ds)).map(modelView) } };
  },
};

function auditJson(r: AuditRow) {
  return { ...r, at: r.at.toISOString() };
}

export const getAudit: RouteDef = {
  method: 'get',
  path: '/v1/audit',
  roles: ['auditor'],
  audit: 'audit.read',
  doc: {
    summary: 'Read the audit log',
    tags: ['audit'],
    description: 'In chain order (oldest first).',
    query: [
      { name: 'studyId', description: 'rows about this study', schema: { type: 'string', format: 'uuid' } },
      { name: 'actor', description: 'rows by this client or user', schema: { type: 'string' } },
      { name: 'action', description: 'e.g. study.read', schema: { type: 'string' } },
      { name: 'from', description: 'at or after (ISO 8601)', schema: { type: 'string', format: 'date-time' } },
      { name: 'to', description: 'before (ISO 8601)', schema: { type: 'string', format: 'date-time' } },
      limitParam,
      cursorParam,
    ],
    responses: { '200': { description: 'One page', content: json(ref('AuditPage')) }, ...badRequest },
  },
  async handle(c) {
    const q = new Query(c.req.query);
    const limit = q.int('limit', 100, 1, 1000);
    const res = await listAudit(c.deps.ds, {
      after: decodeCursor(q.string('cursor', 200), isSeqText) ?? undefined,
      limit,
      studyId: q.uuid('studyId'),
      actor: q.string('actor'),
      action: q.string('action'),
      from: q.date('from'),
      to: q.date('to'),
    });
    c.detail = { count: res.items.length };
    return { status: 200, json: { items: res.items.map(auditJson), nextCursor: res.next ? encodeCursor(res.next) : null } };
  },
};

export const verifyAudit: RouteDef = {
  method: 'get',
  path: '/v1/audit/verify',
  roles: ['auditor'],
  audit: 'audit.verify',
  doc: {
    summary: 'Verify the audit chain',
    tags: ['audit'],
    description:
      'Recomputes every row hash and link. ok=false names the first row that does not hold. Publish headHash elsewhere to detect removal of the newest rows.',
    responses: { '200': { description: 'Verification result', content: json(ref('AuditVerification')) } },
  },
  async handle(c) {
    const v = await verifyAuditChain(c.deps.ds);
    c.detail = { ok: v.ok, checked: v.checked, firstBroken: v.firstBroken?.seq ?? null };
    return { status: 200, json: v };
  },
};

export const listRoutes = [getWorklist, getPredictions, getPredictionsCsv, getModels, getAudit, verifyAudit];
