/**
 * Shadow candidates and how they compare with the active model and with clinicians' reviews;
 * admins start and stop a run here as operators do with `cxr-triage model shadow` (the same
 * service step, the same audit actions).
 */
import type { EntityManager } from 'typeorm';
import type { ShadowComparison, ShadowSetting } from '../../db/shadow.js';
import { runningShadow } from '../../db/shadow.js';
import { CxrError } from '../../errors.js';
import { shadowComparisons, startShadowRun, stopShadow } from '../../service/shadow.js';
import { readJsonObject } from '../http.js';
import { json, ref } from '../openapi-types.js';
import type { JsonSchema } from '../openapi-types.js';
import { principalOf, type Ctx, type RouteDef } from '../route.js';

const num = { type: 'number' };
const numOrNull = { type: ['number', 'null'] };
const int = { type: 'integer' };
const str = { type: 'string' };
const dateTime = { type: 'string', format: 'date-time' };

const setting: JsonSchema = {
  type: ['object', 'null'],
  properties: {
    kind: { type: 'string', enum: ['segmenter', 'classifier'] },
    candidate: { ...str, description: 'NAME@VERSION' },
    fraction: { ...num, description: 'share of studies sampled (a hash of the StudyInstanceUID below it)' },
    running: { type: 'boolean' },
    startedBy: str,
    startedAt: dateTime,
    stoppedBy: { type: ['string', 'null'] },
    stoppedAt: { type: ['string', 'null'], format: 'date-time' },
  },
};
const versions: JsonSchema = {
  type: 'array',
  items: { type: 'object', properties: { segmenter: str, classifier: str, n: int } },
};
const reviewed: JsonSchema = {
  type: 'object',
  properties: {
    truePositive: int,
    falseNegative: int,
    trueNegative: int,
    falsePositive: int,
    sensitivity: numOrNull,
    specificity: numOrNull,
  },
};
const comparison: JsonSchema = {
  type: 'object',
  properties: {
    kind: { type: 'string', enum: ['segmenter', 'classifier'] },
    candidate: str,
    setting,
    scored: { ...int, description: 'studies the candidate scored' },
    compared: { ...int, description: 'of those, studies with an active prediction' },
    candidateVersions: { ...versions, description: "exact versions behind the candidate's results" },
    activeVersions: { ...versions, description: 'exact versions behind the active results compared with' },
    decisionAgreement: { ...numOrNull, description: 'share of compared studies with the same decision' },
    meanAbsProbabilityDifference: numOrNull,
    flaggedRate: { type: 'object', properties: { candidate: numOrNull, active: numOrNull } },
    reviewed: {
      type: 'object',
      description:
        "compared studies whose latest review gives the truth: its label (pneumonia / no pneumonia; 'uncertain' is left out), else its verdict on the active decision",
      properties: { n: int, positive: int, negative: int, candidate: reviewed, active: reviewed },
    },
  },
};

function settingView(s: ShadowSetting | null) {
  if (!s) return null;
  return {
    kind: s.kind,
    candidate: `${s.name}@${s.version}`,
    fraction: s.fraction,
    running: s.stoppedAt === null,
    startedBy: s.startedBy,
    startedAt: s.startedAt.toISOString(),
    stoppedBy: s.stoppedBy,
    stoppedAt: s.stoppedAt?.toISOString() ?? null,
  };
}

function comparisonView(c: ShadowComparison) {
  return { ...c, setting: settingView(c.setting) };
}

export const getShadow: RouteDef = {
  method: 'get',
  path: '/v1/models/shadow',
  roles: ['auditor', 'admin'],
  audit: 'models.shadow.read',
  doc: {
    summary: 'List shadow candidates with their comparisons',
    tags: ['models'],
    description:
      "The candidate running now (`cxr-triage model shadow`), and every candidate ever run, newest first, each compared with the active model on the studies it scored and against clinicians' reviews. Shadow results are never part of the worklist, FHIR, PACS results or statistics.",
    responses: {
      '200': {
        description: 'Running candidate and comparisons',
        content: json({ type: 'object', properties: { running: setting, items: { type: 'array', items: comparison } } }),
      },
    },
  },
  async handle(c) {
    const [running, items] = await Promise.all([runningShadow(c.deps.ds), shadowComparisons(c.deps.ds)]);
    return { status: 200, json: { running: settingView(running), items: items.map(comparisonView) } };
  },
};

const MODEL_PART = /^[A-Za-z0-9._+-]{1,100}$/;

export const getShadowComparison: RouteDef = {
  method: 'get',
  path: '/v1/models/:name/:version/shadow',
  roles: ['auditor', 'admin'],
  audit: 'models.shadow.read',
  doc: {
    summary: 'Compare a shadow candidate with the active model',
    tags: ['models'],
    description:
      'Studies scored, decision agreement, mean |Δp| and flagged rates against the active results of the same studies; sensitivity and specificity of each on the reviewed ones.',
    responses: {
      '200': { description: 'The comparison', content: json(comparison) },
      '404': { description: 'This version never ran as a shadow candidate', content: json({ $ref: '#/components/schemas/Error' }) },
    },
  },
  async handle(c) {
    const name = String(c.req.params.name ?? '');
    const version = String(c.req.params.version ?? '');
    if (!MODEL_PART.test(name) || !MODEL_PART.test(version)) throw new CxrError('E_NOT_FOUND', 'no such model version');
    const [first] = await shadowComparisons(c.deps.ds, { name, version });
    return { status: 200, json: comparisonView(first) };
  },
};

/** The audit row of a start or stop, in the transaction that makes the change (like the command's). */
const auditAs =
  (c: Ctx, action: string, status: number) =>
  (m: EntityManager, detail: Record<string, unknown>): Promise<void> =>
    c.auditIn(m, { action, studyId: null, outcome: 'ok', detail: { ...detail, via: 'api', status } });

const refused = {
  '400': { description: 'fraction is not a number in (0, 1]', content: json(ref('Error')) },
  '404': { description: 'No such version in the models folder', content: json(ref('Error')) },
  '409': { description: 'The version is the active one, or cannot be served (files differ from its manifest, no ONNX model)', content: json(ref('Error')) },
  '415': { description: 'Content-Type is not application/json', content: json(ref('Error')) },
};

export const startShadowRoute: RouteDef = {
  method: 'post',
  path: '/v1/admin/models/:name/:version/shadow',
  roles: ['admin'],
  audit: 'model.shadow.start',
  doc: {
    summary: 'Start a shadow run of a model version',
    tags: ['admin', 'models'],
    description:
      'The version (under the models folder every worker loads from) scores a sample of new studies as well as the active model: a study is in the sample when a hash of its StudyInstanceUID falls below `fraction`. ' +
      'Its results are kept apart (never in the worklist, FHIR, PACS results or statistics). One candidate runs at a time: this replaces a running one. ' +
      'The same step as `cxr-triage model shadow NAME@VERSION --fraction F`, audited as model.shadow.start.',
    requestBody: {
      required: true,
      content: json({
        type: 'object',
        required: ['fraction'],
        properties: { fraction: { type: 'number', exclusiveMinimum: 0, maximum: 1, description: 'share of studies sampled' } },
      }),
    },
    responses: {
      '200': {
        description: 'Started; the candidate it replaced, if any',
        content: json({ type: 'object', properties: { running: setting, replaced: setting } }),
      },
      ...refused,
    },
  },
  async handle(c) {
    const name = String(c.req.params.name ?? '');
    const version = String(c.req.params.version ?? '');
    if (!MODEL_PART.test(name) || !MODEL_PART.test(version)) throw new CxrError('E_NOT_FOUND', 'no such model version');
    c.detail = { candidate: `${name}@${version}` };
    const body = await readJsonObject(c.req);
    c.detail = { ...c.detail, fraction: body.fraction };
    const modelsDir = c.deps.modelsDir;
    if (!modelsDir) throw new CxrError('E_CONFLICT', 'this server was started without a models folder');
    const r = await startShadowRun(
      c.deps.ds,
      modelsDir,
      { name, version, fraction: body.fraction, by: principalOf(c).sub },
      auditAs(c, 'model.shadow.start', 200),
    );
    return { status: 200, json: { running: settingView(r.started), replaced: settingView(r.replaced) } };
  },
};

export const stopShadowRoute: RouteDef = {
  method: 'delete',
  path: '/v1/admin/models/shadow',
  roles: ['admin'],
  audit: 'model.shadow.stop',
  doc: {
    summary: 'Stop the running shadow candidate',
    tags: ['admin', 'models'],
    description:
      'Workers stop scoring it before their next study; its results and comparison stay. The same step as `cxr-triage model shadow --off`, audited as model.shadow.stop.',
    responses: {
      '200': { description: 'The candidate stopped (null: none was running)', content: json({ type: 'object', properties: { stopped: setting } }) },
    },
  },
  async handle(c) {
    const stopped = await stopShadow(c.deps.ds, principalOf(c).sub, auditAs(c, 'model.shadow.stop', 200));
    return { status: 200, json: { stopped: settingView(stopped) } };
  },
};

export const shadowRoutes = [getShadow, getShadowComparison, startShadowRoute, stopShadowRoute];
