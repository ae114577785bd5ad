/** The OpenAPI 3.1 document, built from the route table so that it lists exactly the routes served. */
import { ROLES } from '../db/entities.js';
import type { JsonSchema } from './openapi-types.js';
import { ref } from './openapi-types.js';
import type { RouteDef } from './route.js';

const str = { type: 'string' };
const strOrNull = { type: ['string', 'null'] };
const dateTime = { type: 'string', format: 'date-time' };
const dateTimeOrNull = { type: ['string', 'null'], format: 'date-time' };
const strings = { type: 'array', items: str };

const schemas: Record<string, JsonSchema> = {
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: { code: { type: 'string', description: 'stable code, e.g. E_NOT_DICOM' }, message: str, requestId: str },
      },
    },
  },
  Role: { type: 'string', enum: [...ROLES] },
  Deliveries: {
    type: 'object',
    properties: {
      studyInstanceUid: str,
      counts: { type: 'object', properties: { pending: { type: 'integer' }, delivered: { type: 'integer' }, failed: { type: 'integer' } } },
      items: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            kind: { type: 'string', enum: ['sr', 'sc'], description: 'sr: Comprehensive SR; sc: Secondary Capture picture' },
            sopInstanceUid: str,
            seriesInstanceUid: str,
            sourceStudyId: { type: 'string', format: 'uuid', description: 'the scored instance the object reports on' },
            built: { type: 'boolean' },
            buildError: strOrNull,
            destination: { type: ['string', 'null'], description: 'stow:URL or dimse:AET@host:port; null when no destination is configured' },
            status: { type: ['string', 'null'], enum: ['pending', 'delivered', 'failed', null] },
            attempts: { type: 'integer' },
            maxAttempts: { type: ['integer', 'null'] },
            nextAttemptAt: dateTimeOrNull,
            lastAttemptAt: dateTimeOrNull,
            deliveredAt: dateTimeOrNull,
            error: { oneOf: [{ type: 'null' }, { type: 'object', properties: { code: str, message: str } }] },
          },
        },
      },
    },
  },
  TokenRequest: {
    type: 'object',
    properties: {
      grant_type: { type: 'string', enum: ['client_credentials', 'password'] },
      client_id: str,
      client_secret: str,
      username: str,
      password: str,
    },
  },
  LoginRequest: { type: 'object', required: ['username', 'password'], properties: { username: str, password: str } },
  Session: {
    type: 'object',
    required: ['user', 'csrfToken', 'expiresAt', 'idleTimeoutSeconds'],
    properties: {
      user: { type: 'object', properties: { id: str, role: ref('Role'), displayName: str } },
      csrfToken: { type: ['string', 'null'], description: 'send as X-CSRF-Token on every POST and DELETE of this session (null for a bearer token)' },
      expiresAt: dateTimeOrNull,
      idleTimeoutSeconds: { type: ['integer', 'null'] },
    },
  },
  Token: {
    type: 'object',
    required: ['access_token', 'token_type', 'expires_in', 'role'],
    properties: { access_token: str, token_type: { const: 'Bearer' }, expires_in: { type: 'integer' }, role: ref('Role') },
  },
  StudyAccepted: {
    type: 'object',
    required: ['id', 'status', 'location'],
    properties: { id: { type: 'string', format: 'uuid' }, status: { const: 'queued' }, sopInstanceUid: str, location: str },
  },
  TriageReport: {
    type: 'object',
    description: 'The full report of src/inference (probability, threshold, target recall, decision, flags, TTA, QC, window, models, timings)',
    additionalProperties: true,
  },
  Prediction: {
    type: 'object',
    properties: {
      id: str,
      probability: { type: 'number' },
      threshold: { type: 'number' },
      targetRecall: { type: 'number' },
      decision: { type: 'string', enum: ['positive', 'negative'] },
      flagged: { type: 'boolean' },
      flagReasons: strings,
      qcFlags: strings,
      tta: { type: 'object', properties: { views: { type: 'integer' }, spread: { type: 'number' } } },
      lungAreaFraction: { type: 'number' },
      createdAt: dateTime,
      report: ref('TriageReport'),
    },
  },
  Review: {
    type: 'object',
    properties: {
      id: str,
      studyId: str,
      predictionId: str,
      reviewer: str,
      verdict: { type: 'string', enum: ['agree', 'disagree'] },
      label: { type: ['string', 'null'], enum: ['pneumonia', 'no_pneumonia', 'uncertain', null] },
      note: str,
      amendsId: strOrNull,
      createdAt: dateTime,
    },
  },
  ReviewRequest: {
    type: 'object',
    required: ['verdict'],
    properties: {
      verdict: { type: 'string', enum: ['agree', 'disagree'] },
      label: { type: 'string', enum: ['pneumonia', 'no_pneumonia', 'uncertain'], description: "the clinician's own reading" },
      note: { type: 'string', maxLength: 4000 },
      amends: { type: 'integer', description: 'id of the earlier review of this study that this one amends' },
    },
  },
  StudyLinks: { type: 'object', properties: { self: str, image: str, mask: str, heatmap: str, reviews: str, deliveries: str } },
  Study: {
    type: 'object',
    properties: {
      id: { type: 'string', format: 'uuid' },
      status: { type: 'string', enum: ['queued', 'scored', 'failed', 'not_scored'] },
      notScoredReason: strOrNull,
      accessionNumber: strOrNull,
      studyDate: strOrNull,
      studyInstanceUid: str,
      seriesInstanceUid: str,
      sopInstanceUid: str,
      sopClassUid: strOrNull,
      patientPseudonym: { type: ['string', 'null'], description: 'HMAC-SHA256 of the PatientID under the site key' },
      modality: strOrNull,
      viewPosition: strOrNull,
      bodyPart: strOrNull,
      transferSyntax: strOrNull,
      rows: { type: ['integer', 'null'] },
      columns: { type: ['integer', 'null'] },
      sha256: str,
      sizeBytes: { type: 'integer' },
      submittedBy: str,
      receivedAt: dateTime,
      scoredAt: dateTimeOrNull,
      error: { oneOf: [{ type: 'null' }, { type: 'object', properties: { code: str, message: str } }] },
      prediction: { oneOf: [{ type: 'null' }, ref('Prediction')] },
      reviews: { type: 'array', items: ref('Review') },
      results: {
        type: 'object',
        description: 'AI result objects (SR, Secondary Capture) made for this image, and their deliveries to PACS by state (details: links.deliveries)',
        properties: {
          objects: { type: 'integer' },
          built: { type: 'integer' },
          pending: { type: 'integer' },
          delivered: { type: 'integer' },
          failed: { type: 'integer' },
        },
      },
      links: ref('StudyLinks'),
    },
  },
  WorklistPage: {
    type: 'object',
    properties: {
      items: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            studyId: str,
            status: { type: 'string', enum: ['scored', 'failed'] },
            studyInstanceUid: str,
            accessionNumber: strOrNull,
            studyDate: strOrNull,
            scoredImages: { type: 'integer', description: 'frontal images whose result counts' },
            instances: {
              type: 'array',
              description: 'every instance of the study: scored, not_scored (with the reason) or failed',
              items: {
                type: 'object',
                properties: {
                  id: str,
                  sopInstanceUid: str,
                  seriesInstanceUid: str,
                  viewPosition: strOrNull,
                  status: { type: 'string', enum: ['scored', 'not_scored', 'failed'] },
                  probability: { type: ['number', 'null'] },
                  flagged: { type: ['boolean', 'null'] },
                  reason: strOrNull,
                  errorCode: strOrNull,
                  decisive: { type: 'boolean' },
                },
              },
            },
            modality: strOrNull,
            viewPosition: strOrNull,
            receivedAt: dateTime,
            probability: { type: ['number', 'null'] },
            decision: { type: ['string', 'null'] },
            flagged: { type: 'boolean' },
            flagReasons: strings,
            qcFlags: strings,
            errorCode: strOrNull,
            reviewCount: { type: 'integer' },
            lastVerdict: strOrNull,
            links: ref('StudyLinks'),
          },
        },
      },
      nextCursor: strOrNull,
    },
  },
  PredictionPage: {
    type: 'object',
    properties: {
      items: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            predictionId: str,
            studyId: str,
            studyInstanceUid: str,
            sopInstanceUid: str,
            patientPseudonym: strOrNull,
            modality: strOrNull,
            viewPosition: strOrNull,
            receivedAt: dateTime,
            predictedAt: dateTime,
            segmenter: { type: 'string', description: 'name@version' },
            classifier: { type: 'string', description: 'name@version' },
            probability: { type: 'number' },
            threshold: { type: 'number' },
            targetRecall: { type: 'number' },
            decision: { type: 'string', enum: ['positive', 'negative'] },
            flagged: { type: 'boolean' },
            flagReasons: strings,
            qcFlags: strings,
            ttaViews: { type: 'integer' },
            ttaSpread: { type: 'number' },
            lungAreaFraction: { type: 'number' },
            reviewCount: { type: 'integer' },
            lastVerdict: strOrNull,
            lastReviewer: strOrNull,
            lastReviewedAt: dateTimeOrNull,
          },
        },
      },
      nextCursor: strOrNull,
    },
  },
  ModelList: {
    type: 'object',
    properties: {
      items: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            id: { type: 'integer' },
            kind: { type: 'string', enum: ['segmenter', 'classifier'] },
            name: str,
            version: str,
            sha256: str,
            active: { type: 'boolean' },
            registeredAt: dateTime,
            activatedAt: dateTimeOrNull,
            manifest: { type: 'object' },
          },
        },
      },
    },
  },
  AuditRow: {
    type: 'object',
    properties: {
      seq: str,
      at: dateTime,
      actor: str,
      role: strOrNull,
      action: str,
      studyId: strOrNull,
      requestId: str,
      outcome: { type: 'string', description: "'ok' or the error code" },
      detail: { type: 'object' },
      prevHash: str,
      hash: str,
    },
  },
  AuditPage: { type: 'object', properties: { items: { type: 'array', items: ref('AuditRow') }, nextCursor: strOrNull } },
  AuditVerification: {
    type: 'object',
    properties: {
      ok: { type: 'boolean' },
      checked: { type: 'integer' },
      headHash: str,
      headSeq: strOrNull,
      firstBroken: {
        oneOf: [
          { type: 'null' },
          { type: 'object', properties: { seq: str, reason: { type: 'string', enum: ['prev_hash_mismatch', 'hash_mismatch'] }, expected: str, found: str } },
        ],
      },
    },
  },
  ClientCreate: {
    type: 'object',
    required: ['id', 'role'],
    properties: {
      id: str,
      role: ref('Role'),
      description: str,
      aeTitle: { type: ['string', 'null'], description: 'calling AE title for DIMSE C-STORE (workstation clients)' },
    },
  },
  Client: {
    type: 'object',
    properties: {
      id: str,
      role: ref('Role'),
      description: str,
      aeTitle: { type: ['string', 'null'] },
      createdBy: str,
      createdAt: dateTime,
      revokedAt: dateTimeOrNull,
    },
  },
  ClientCreated: { allOf: [ref('Client'), { type: 'object', properties: { secret: { type: 'string', description: 'shown once' } } }] },
  ClientList: { type: 'object', properties: { items: { type: 'array', items: ref('Client') } } },
  OperatorToken: {
    type: 'object',
    description: 'An operator token on record (cxr-triage token); the token itself is never stored',
    properties: {
      id: { type: 'string', format: 'uuid', description: 'the JWT id (jti)' },
      subject: str,
      role: ref('Role'),
      description: str,
      createdBy: str,
      issuedAt: dateTime,
      expiresAt: dateTime,
      revokedAt: dateTimeOrNull,
      revokedBy: { type: ['string', 'null'] },
    },
  },
  OperatorTokenList: { type: 'object', properties: { items: { type: 'array', items: ref('OperatorToken') } } },
  UserCreate: {
    type: 'object',
    required: ['id', 'role'],
    properties: { id: str, role: ref('Role'), displayName: str, password: { type: 'string', minLength: 12 } },
  },
  User: {
    type: 'object',
    properties: { id: str, displayName: str, role: ref('Role'), createdBy: str, createdAt: dateTime, disabledAt: dateTimeOrNull },
  },
  UserCreated: { allOf: [ref('User'), { type: 'object', properties: { password: { type: 'string', description: 'generated; shown once' } } }] },
  UserList: { type: 'object', properties: { items: { type: 'array', items: ref('User') } } },
  DicomJson: {
    type: 'object',
    description:
      'DICOM JSON (PS3.18 F.2): 00081199 ReferencedSOPSequence (stored: 00081150, 00081155, 00081190 RetrieveURL), ' +
      '00081198 FailedSOPSequence (refused: 00081150, 00081155, 00081197 FailureReason, 00000902 error comment)',
    additionalProperties: { type: 'object', properties: { vr: str, Value: { type: 'array' } } },
  },
  Health: { type: 'object', properties: { status: str } },
  Readiness: {
    type: 'object',
    properties: { status: { type: 'string', enum: ['ready', 'not_ready'] }, checks: { type: 'object', additionalProperties: { type: 'string' } } },
  },
};

/** Express `/a/:b` → OpenAPI `/a/{b}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

export function buildOpenApi(routes: readonly RouteDef[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const p = openApiPath(r.path);
    const pathParams = [...r.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const queryParams = (r.doc.query ?? []).map((q) => ({
      name: q.name,
      in: 'query',
      required: q.required ?? false,
      description: q.description,
      schema: q.schema,
    }));
    const responses: Record<string, unknown> = { ...r.doc.responses };
    if (r.roles !== 'public') {
      responses['401'] ??= { description: 'Missing, invalid or expired token', content: { 'application/json': { schema: ref('Error') } } };
      responses['403'] ??= { description: `Role not allowed (allowed: ${r.roles.join(', ')})`, content: { 'application/json': { schema: ref('Error') } } };
    }
    paths[p] ??= {};
    paths[p][r.method] = {
      operationId: `${r.method}${p.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, ch: string | undefined) => (ch ? ch.toUpperCase() : ''))}`,
      summary: r.doc.summary,
      description: [
        r.doc.description,
        r.roles === 'public' ? 'No authentication.' : `Roles: ${r.roles.join(', ')}.`,
        r.audit ? `Audited as '${r.audit}'.` : null,
      ]
        .filter(Boolean)
        .join(' '),
      tags: r.doc.tags,
      ...(r.roles === 'public' ? { security: [] } : {}),
      ...(pathParams.length + queryParams.length > 0 ? { parameters: [...pathParams, ...queryParams] } : {}),
      ...(r.doc.requestBody ? { requestBody: r.doc.requestBody } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'cxr-triage',
      version,
      description:
        'Chest X-ray pneumonia triage. Workstations post DICOM studies; clinicians review flagged ones; auditors query history and the hash-chained audit log. Not for clinical use.',
    },
    servers: [{ url: '/' }],
    security: [{ bearerAuth: [] }],
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas,
    },
    paths,
  };
}
