/** For monitoring tests: predictions made in bulk (copies of one scored study, as if many more had been scored), and reading /metrics. */
import { randomUUID } from 'node:crypto';
import type { TestDatabase } from './database.js';

/** Copies of a scored study and its prediction, with the decisions given; the new study ids. */
export async function cloneScored(db: TestDatabase, studyId: string, decisions: ('positive' | 'negative')[]): Promise<string[]> {
  const columns = async (table: string, skip: string[]): Promise<string[]> =>
    (
      (await db.ds.query(
        `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`,
        [table],
      )) as { column_name: string }[]
    )
      .map((r) => r.column_name)
      .filter((c) => !skip.includes(c));
  const studyCols = await columns('studies', ['id', 'seq', 'sop_instance_uid']);
  const predictionCols = await columns('predictions', ['id', 'study_id', 'decision']);
  const ids: string[] = [];
  for (const decision of decisions) {
    const [{ id }] = (await db.ds.query(
      `INSERT INTO studies (id, sop_instance_uid, ${studyCols.join(', ')}) SELECT gen_random_uuid(), $2, ${studyCols.join(', ')} FROM studies WHERE id = $1 RETURNING id`,
      [studyId, `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`)}`],
    )) as { id: string }[];
    await db.ds.query(
      `INSERT INTO predictions (study_id, decision, ${predictionCols.join(', ')}) SELECT $2, $3, ${predictionCols.join(', ')} FROM predictions WHERE study_id = $1`,
      [studyId, id, decision],
    );
    ids.push(id);
  }
  return ids;
}

/** The value of one sample of `name` whose labels include `labels` in Prometheus text, or null. */
export function sample(text: string, name: string, labels: Record<string, string>): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.indexOf('}'));
    const got = Object.fromEntries(body.split(',').map((kv) => kv.split('=').map((x) => x.replace(/"/g, '')) as [string, string]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return null;
}
