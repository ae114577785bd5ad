/** The schema comes from migrations only, and the entity definitions agree with it. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createDataSource, openDatabase } from '../../src/db/data-source.js';
import { entities } from '../../src/db/entities.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/** TypeORM column type → PostgreSQL's udt_name */
const PG_TYPE: Record<string, string> = {
  int: 'int4',
  bigint: 'int8',
  'double precision': 'float8',
  char: 'bpchar',
  boolean: 'bool',
  text: 'text',
  uuid: 'uuid',
  jsonb: 'jsonb',
  timestamptz: 'timestamptz',
  date: 'date',
};

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase({ migrate: false });
});
after(async () => {
  await db?.drop();
});

test('an empty database gets every table from the migrations, and a second run applies nothing', async () => {
  const ds = await openDatabase({ url: db.url });
  try {
    const tables: { table_name: string }[] = await ds.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`,
    );
    assert.deepEqual(
      tables.map((t) => t.table_name),
      [
        'api_clients',
        'audit_log',
        'derived_objects',
        'dicom_instances',
        'drift_baselines',
        'login_attempts',
        'model_versions',
        'object_chunks',
        'objects',
        'operator_tokens',
        'predictions',
        'result_deliveries',
        'reviews',
        'shadow_predictions',
        'shadow_settings',
        'studies',
        'study_worklist',
        'typeorm_migrations',
        'users',
        'web_sessions',
      ],
    );
    // the job queue's tables come from a migration too (pg-boss's plan for the pinned version)
    const jobTables: { table_name: string }[] = await ds.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'pgboss' AND table_name IN ('job', 'queue', 'version') ORDER BY table_name`,
    );
    assert.deepEqual(
      jobTables.map((t) => t.table_name),
      ['job', 'queue', 'version'],
    );
    assert.equal(await ds.showMigrations(), false);
    assert.deepEqual(await ds.runMigrations(), []);
  } finally {
    await ds.destroy();
  }
});

test('the data source never synchronizes the schema from entities', () => {
  const ds = createDataSource({ url: db.url });
  assert.equal(ds.options.synchronize, false);
  assert.equal(ds.options.migrationsRun, false);
});

test('every entity column exists in its table with a matching type and nullability', async () => {
  const ds = await openDatabase({ url: db.url });
  try {
    for (const schema of entities) {
      const meta = ds.getMetadata(schema);
      const cols: { column_name: string; data_type: string; udt_name: string; is_nullable: string }[] = await ds.query(
        `SELECT column_name, data_type, udt_name, is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1`,
        [meta.tableName],
      );
      const byName = new Map(cols.map((c) => [c.column_name, c]));
      assert.equal(cols.length, meta.columns.length, `${meta.tableName}: column count`);
      for (const col of meta.columns) {
        const db = byName.get(col.databaseName);
        assert.ok(db, `${meta.tableName}.${col.databaseName} is missing`);
        const got = col.isArray ? db.udt_name.replace(/^_/, '') : db.udt_name;
        assert.equal(got, PG_TYPE[String(col.type)], `${meta.tableName}.${col.databaseName} type`);
        assert.equal(col.isArray, db.data_type === 'ARRAY', `${meta.tableName}.${col.databaseName} array`);
        assert.equal(col.isNullable, db.is_nullable === 'YES', `${meta.tableName}.${col.databaseName} nullability`);
      }
    }
  } finally {
    await ds.destroy();
  }
});

test('processes that start together on an empty database all come up: one applies the migrations while the others wait, then find nothing pending', async () => {
  const fresh = await createTestDatabase({ migrate: false });
  try {
    // a pool of one connection each, as the test template uses: the lock must not need a second pooled one
    const opened = await Promise.allSettled([1, 1, 2].map((poolSize) => openDatabase({ url: fresh.url, poolSize })));
    const failures = opened.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    assert.deepEqual(failures, []);
    const sources = opened.map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof openDatabase>>>).value);
    try {
      const applied: { name: string; n: string }[] = await sources[0].query(
        'SELECT name, count(*) AS n FROM typeorm_migrations GROUP BY name HAVING count(*) > 1',
      );
      assert.deepEqual(applied, []);
      assert.equal(Number((await sources[0].query('SELECT count(*) AS n FROM typeorm_migrations'))[0].n), sources[0].migrations.length);
    } finally {
      await Promise.all(sources.map((s) => s.destroy()));
    }
  } finally {
    await fresh.drop();
  }
});
