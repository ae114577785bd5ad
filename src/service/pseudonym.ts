import { createHmac } from 'node:crypto';

/**
 * The stored stand-in for a PatientID: HMAC-SHA256 under a site key, hex. Studies of one
 * patient stay linkable (same pseudonym) without the identifier ever reaching the database;
 * without the key the mapping cannot be reversed or recomputed by guessing IDs.
 */
export function pseudonymisePatientId(key: Buffer, patientId: string | null): string | null {
  const id = patientId?.trim();
  if (!id) return null;
  return createHmac('sha256', key).update(id, 'utf8').digest('hex');
}
