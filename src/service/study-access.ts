/**
 * Who may see which study: a workstation sees only the studies it sent (it learns nothing of
 * another sender's, not even that they exist); every other role with access to studies sees all.
 */
import type { DataSource, EntityManager } from 'typeorm';
import type { Role, StudyRow } from '../db/entities.js';
import { findStudy } from '../db/studies.js';

export interface Viewer {
  sub: string;
  role: Role;
}

export function sentBy(study: Pick<StudyRow, 'submittedBy'>, sender: string): boolean {
  return study.submittedBy === sender;
}

export function canSee(study: Pick<StudyRow, 'submittedBy'>, viewer: Viewer): boolean {
  return viewer.role !== 'workstation' || sentBy(study, viewer.sub);
}

/** The study when it exists and the viewer may see it; null alike for "absent" and "not yours". */
export async function findVisibleStudy(db: DataSource | EntityManager, id: string, viewer: Viewer): Promise<StudyRow | null> {
  const study = await findStudy(db, id);
  return study && canSee(study, viewer) ? study : null;
}
