/**
 * A clinician's review of a study's prediction: what a review may say, that there must be a
 * prediction to review, and that the review and its audit row commit together or not at all.
 */
import type { DataSource, EntityManager } from 'typeorm';
import { REVIEW_LABELS, type ReviewLabel, type ReviewRow, type StudyRow, type Verdict } from '../db/entities.js';
import { addReview, findPrediction, listReviews } from '../db/studies.js';
import { CxrError } from '../errors.js';

export const MAX_NOTE_LENGTH = 4000;

export interface ReviewInput {
  verdict: Verdict;
  note: string;
  /** the clinician's own reading, when given */
  label: ReviewLabel | null;
  /** the earlier review of the same study this one amends (history is appended, never overwritten) */
  amendsId: string | null;
}

/** The review fields of a request body, or E_BAD_REQUEST naming what is wrong. */
export function reviewInput(body: Record<string, unknown>): ReviewInput {
  const verdict = body.verdict;
  if (verdict !== 'agree' && verdict !== 'disagree') throw new CxrError('E_BAD_REQUEST', "verdict must be 'agree' or 'disagree'");
  const note = body.note ?? '';
  if (typeof note !== 'string' || note.length > MAX_NOTE_LENGTH)
    throw new CxrError('E_BAD_REQUEST', `note must be a string of at most ${MAX_NOTE_LENGTH} characters`);
  const label = body.label ?? null;
  if (label !== null && !REVIEW_LABELS.includes(label as ReviewLabel)) throw new CxrError('E_BAD_REQUEST', `label must be one of ${REVIEW_LABELS.join(', ')}`);
  // review ids are bigints, which JSON carries as strings; a number is fine too
  const amends = body.amends ?? null;
  const amendsId =
    amends === null
      ? null
      : typeof amends === 'number' && Number.isSafeInteger(amends) && amends > 0
        ? String(amends)
        : typeof amends === 'string' && /^[1-9]\d{0,17}$/.test(amends)
          ? amends
          : undefined;
  if (amendsId === undefined) throw new CxrError('E_BAD_REQUEST', 'amends must be the id of an earlier review of this study');
  return { verdict, note, label: label as ReviewLabel | null, amendsId };
}

/**
 * Records the review in one transaction with what `audit` appends (the caller's audit row):
 * a failed audit append leaves no review behind. E_CONFLICT when the study has no prediction yet.
 */
export async function recordReview(
  ds: DataSource,
  study: StudyRow,
  reviewer: string,
  input: ReviewInput,
  audit: (m: EntityManager, review: ReviewRow) => Promise<void>,
): Promise<ReviewRow> {
  const prediction = await findPrediction(ds, study.id);
  if (!prediction) throw new CxrError('E_CONFLICT', `study ${study.id} has no prediction to review (status ${study.status})`);
  return ds.transaction(async (m) => {
    if (input.amendsId !== null && !(await listReviews(m, study.id)).some((r) => String(r.id) === input.amendsId)) {
      throw new CxrError('E_BAD_REQUEST', `review ${input.amendsId} is not a review of study ${study.id}`);
    }
    const review = await addReview(m, { studyId: study.id, predictionId: prediction.id, reviewer, ...input });
    await audit(m, review);
    return review;
  });
}
