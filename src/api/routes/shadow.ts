/** Shadow candidates and how they compare with the active model and with clinicians' reviews. */
import type { ShadowComparison, ShadowSetting } from '../../db/shadow.js';
import { runningShadow } from '../../db/shadow.js';
import { CxrError } from '../../errors.js';
import { shadowComparisons } from '../../service/shadow.js';
import { json } from '../openapi-types.js';
import type { JsonSchema } from '../openapi-types.js';
import type { RouteDef } from '../route.js';

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

export const shadowRoutes = [getShadow, getShadowComparison];
