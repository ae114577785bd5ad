/**
 * The AI result objects of a prediction, and where they go. `enqueueResults` runs in the
 * transaction that stores the prediction: the result objects (with their UIDs) and one
 * pending delivery per configured destination exist exactly when the prediction does.
 * `buildResult` makes an object's bytes later, from the stored original and what was stored
 * with the prediction (window, mask, CAM): no model runs, and building again gives the same
 * object (same UIDs, same content).
 */
import type { DataSource, EntityManager } from 'typeorm';
import { derivedUids, encodePart10, readSourceHeader, type DerivedIdentity, type SourceHeader } from '../dicom/derived.js';
import { secondaryCaptureDataset } from '../dicom/secondary-capture.js';
import { aiResultSr, COMPREHENSIVE_SR, type AiResult } from '../dicom/sr.js';
import { SOP_CLASS } from '../dicom/uids.js';
import { renderResultPicture, resultPictureSize } from '../imaging/secondary-capture.js';
import type { PredictionRow, StudyRow } from '../db/entities.js';
import { lockObject } from '../db/objects.js';
import { insertOutbox, markBuilt, type DerivedKind, type DerivedObjectRow, type NewDerivedObject } from '../db/results.js';
import { findPrediction, findStudy } from '../db/studies.js';
import type { TriageReport } from '../inference/types.js';
import { CxrError } from '../errors.js';
import { readHead, type ObjectStore } from './object-store.js';
import { storedLayers } from './stored-images.js';

export type ResultDestination = { kind: 'stow'; url: string; auth: string | null } | { kind: 'dimse'; aeTitle: string; host: string; port: number };

/** How a destination is named in the outbox and the audit log (no credentials in it). */
export function destinationKey(d: ResultDestination): string {
  return d.kind === 'stow' ? `stow:${d.url}` : `dimse:${d.aeTitle}@${d.host}:${d.port}`;
}

export interface ResultsSettings {
  destinations: readonly ResultDestination[];
  /** attempts per object and destination before it is marked failed */
  maxAttempts: number;
  /** delay before the first retry; doubles each retry up to maxRetryDelayMs */
  retryDelayMs: number;
  maxRetryDelayMs: number;
  /** our AE title as the calling AE of C-STOREs */
  callingAeTitle: string;
}

export const DEFAULT_RESULTS_SETTINGS: ResultsSettings = {
  destinations: [],
  maxAttempts: 8,
  retryDelayMs: 10_000,
  maxRetryDelayMs: 30 * 60_000,
  callingAeTitle: 'CXRTRIAGE',
};

/** Series numbers of the result series: high, so a viewer lists them after the acquired ones. */
const SERIES_NUMBER: Record<DerivedKind, number> = { sr: 9901, sc: 9902 };

/** The result objects of one prediction (UIDs fixed now, bytes built later) and their deliveries. */
export async function enqueueResults(
  m: EntityManager,
  s: ResultsSettings,
  source: Pick<StudyRow, 'id' | 'studyInstanceUid' | 'sopInstanceUid'>,
  predictionId: string,
): Promise<void> {
  const objects: NewDerivedObject[] = (['sr', 'sc'] as const).map((kind) => ({
    predictionId,
    sourceId: source.id,
    kind,
    studyInstanceUid: source.studyInstanceUid,
    ...derivedUids(kind, source.sopInstanceUid, predictionId),
    sopClassUid: kind === 'sr' ? COMPREHENSIVE_SR : SOP_CLASS.secondaryCapture,
    modality: kind === 'sr' ? 'SR' : 'OT',
    seriesNumber: SERIES_NUMBER[kind],
  }));
  await insertOutbox(m, objects, s.destinations.map(destinationKey), s.maxAttempts);
}

/** What the SR says, from the stored prediction. */
export function aiResultOf(
  source: Pick<StudyRow, 'studyInstanceUid' | 'seriesInstanceUid' | 'sopInstanceUid'> & { sopClassUid: string },
  p: PredictionRow,
  models: { classifier: string; segmenter: string },
): AiResult {
  return {
    source,
    probability: p.probability,
    threshold: p.threshold,
    targetRecall: p.targetRecall,
    decision: p.decision,
    flagged: p.flagged,
    flagReasons: p.flagReasons,
    qcFlags: p.qcFlags,
    classifier: models.classifier,
    segmenter: models.segmenter,
    predictionId: p.id,
  };
}

/** The banner of the result picture. */
export function bannerLines(r: AiResult): string[] {
  const f = (n: number) => n.toFixed(3);
  return [
    'AI RESULT - NOT FOR DIAGNOSTIC USE',
    `Pneumonia probability ${f(r.probability)} (threshold ${f(r.threshold)}, target recall ${f(r.targetRecall)}): ${r.decision.toUpperCase()}${r.flagged ? ' - FLAGGED FOR REVIEW' : ''}`,
    `Model ${r.classifier}; lung segmenter ${r.segmenter}${r.qcFlags.length > 0 ? `; QC: ${r.qcFlags.join(', ')}` : ''}`,
  ];
}

async function modelNames(ds: DataSource, p: PredictionRow): Promise<{ classifier: string; segmenter: string }> {
  const rows: { id: number; ref: string }[] = await ds.query(`SELECT id, name || '@' || version AS ref FROM model_versions WHERE id = ANY($1::int[])`, [
    [p.classifierId, p.segmenterId],
  ]);
  const name = (id: number) => rows.find((r) => r.id === id)?.ref ?? `model #${id}`;
  return { classifier: name(p.classifierId), segmenter: name(p.segmenterId) };
}

export interface BuiltObject {
  bytes: Uint8Array;
  rows: number | null;
  columns: number | null;
}

/** The object's Part 10 bytes. */
export async function buildResultBytes(ds: DataSource, store: ObjectStore, o: DerivedObjectRow): Promise<BuiltObject> {
  const source = await findStudy(ds, o.sourceId);
  const prediction = await findPrediction(ds, o.sourceId);
  if (!source || !prediction || prediction.id !== o.predictionId)
    throw new CxrError('E_NOT_FOUND', `prediction ${o.predictionId} of study ${o.sourceId} is gone`);
  // The SR needs only the source's header (its first piece, not the whole file read and hashed);
  // the picture needs the pixels, and reads the header from the same bytes.
  const original = o.kind === 'sc' ? await store.get(source.sha256) : null;
  const header = original ? readSourceHeader(original) : await headerOf(store, source.sha256);
  const models = await modelNames(ds, prediction);
  const result = aiResultOf({ ...source, sopClassUid: header.sopClassUid }, prediction, models);
  const id: DerivedIdentity = {
    seriesInstanceUid: o.seriesInstanceUid,
    sopInstanceUid: o.sopInstanceUid,
    seriesNumber: o.seriesNumber,
    at: prediction.createdAt,
  };
  if (!original) return { bytes: encodePart10(aiResultSr(header, id, result)), rows: null, columns: null };
  const layers = await storedLayers(original, prediction.report as unknown as TriageReport, resultPictureSize);
  const picture = await renderResultPicture({ ...layers, lines: bannerLines(result) });
  return { bytes: encodePart10(secondaryCaptureDataset(header, id, picture, models.classifier)), rows: picture.height, columns: picture.width };
}

/** A header is a few KiB: read from the first 64 KiB of the stored original, else (a long header) from all of it. */
async function headerOf(store: ObjectStore, sha256: string): Promise<SourceHeader> {
  try {
    return readSourceHeader(await readHead(store, sha256, 64 * 1024));
  } catch {
    return readSourceHeader(await store.get(sha256));
  }
}

/** Stores the built bytes and records them on the object, in the transaction that claimed it. */
export async function storeBuilt(m: EntityManager, store: ObjectStore, o: DerivedObjectRow, built: BuiltObject, sha256: string): Promise<void> {
  await lockObject(m, sha256);
  await store.put(built.bytes, m, sha256);
  await markBuilt(m, o.id, { sha256, size: built.bytes.length, rows: built.rows, columns: built.columns });
}
