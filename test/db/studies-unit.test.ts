/** Studies as the unit: the migration that introduces it moves existing instance rows. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { migrations } from '../../migrations/index.js';
import { openDatabase } from '../../src/db/data-source.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let db: TestDatabase | null = null;
after(async () => {
  await db?.drop();
});

test('the studies-as-unit migration keeps every row and marks earlier non-frontal instances as not counting', async () => {
  db = await createTestDatabase({ migrate: false });
  const at = migrations.findIndex((m) => m.name.startsWith('StudiesAsUnit'));
  assert.ok(at > 0);
  // The schema as it was just before, with instances recorded then.
  const before = new DataSource({ type: 'postgres', url: db.url, migrations: migrations.slice(0, at), migrationsTableName: 'typeorm_migrations' });
  await before.initialize();
  await before.runMigrations({ transaction: 'each' });
  const insert = (view: string | null, part: string | null) =>
    before.query(
      `INSERT INTO studies (id, study_instance_uid, series_instance_uid, sop_instance_uid, view_position, body_part, sha256, size_bytes, status, submitted_by, received_at)
       VALUES ($1, '1.2.3', '1.2.3.1', $2, $3, $4, repeat('a', 64), 10, 'scored', 'ws', now()) RETURNING id`,
      [
        randomUUID(),
        `1.2.3.1.${randomUUID()
          .slice(0, 8)
          .replace(/[a-f-]/g, '1')}`,
        view,
        part,
      ],
    );
  const pa = (await insert('PA', 'CHEST'))[0].id;
  const lateral = (await insert('LL', 'CHEST'))[0].id;
  const hand = (await insert(null, 'HAND'))[0].id;
  const none = (await insert(null, null))[0].id;
  await before.destroy();

  const ds = await openDatabase({ url: db.url });
  try {
    const rows: { id: string; status: string; exclusion_reason: string | null }[] = await ds.query('SELECT id, status, exclusion_reason FROM studies');
    assert.equal(rows.length, 4);
    const reason = (id: string) => rows.find((r) => r.id === id)?.exclusion_reason;
    assert.equal(reason(pa), null);
    assert.equal(reason(none), null);
    assert.match(String(reason(lateral)), /^not a frontal view \(ViewPosition LL\)/);
    assert.match(String(reason(hand)), /^body part 'HAND' is not the chest/);
    assert.ok(
      rows.every((r) => r.status === 'scored'),
      'history keeps its status and predictions',
    );
    // 'not_scored' needs its reason
    await assert.rejects(ds.query(`UPDATE studies SET status = 'not_scored', exclusion_reason = NULL WHERE id = $1`, [pa]), /studies_not_scored_has_reason/);
  } finally {
    await ds.destroy();
  }
});
