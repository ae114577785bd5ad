/**
 * A fresh PostgreSQL database per test file on the machine's server (127.0.0.1:5432,
 * database `test` for the admin connection), migrated, and dropped at the end: test files run
 * in parallel and never see each other's rows. Migrated ones are copies of a template database
 * migrated once per set of migrations (CREATE DATABASE ... TEMPLATE), not migrated each time.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { DataSource } from 'typeorm';
import { openDatabase } from '../../src/db/data-source.js';
import type { NewPrediction, NewStudy } from '../../src/db/studies.js';

export const ADMIN_URL = process.env.CXR_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  name: string;
  url: string;
  ds: DataSource;
  /** a superuser connection to the same database, for what the service may not do (tampering) */
  superuser: () => Promise<pg.Client>;
  drop: () => Promise<void>;
}

function urlFor(name: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  try {
    await c.connect();
  } catch (e) {
    throw new Error(`tests need PostgreSQL at ${ADMIN_URL} (set CXR_TEST_DATABASE_URL): ${(e as Error).message}`);
  }
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

let template: Promise<string> | undefined;

/**
 * The name of a database holding every migration of migrations/, made by the first test process
 * that asks (under an advisory lock, published by a rename, so no process copies a half-migrated
 * one); named by the migrations' digest, so a changed migration gets a new one. Templates of
 * other migration sets are dropped when not in use.
 */
function migratedTemplate(): Promise<string> {
  template ??= (async () => {
    const dir = join(import.meta.dirname, '..', '..', 'migrations');
    const digest = createHash('sha256');
    for (const f of readdirSync(dir).sort()) digest.update(f).update(readFileSync(join(dir, f)));
    const name = `cxr_template_${digest.digest('hex').slice(0, 16)}`;
    await admin(async (c) => {
      // held until this connection ends
      await c.query('SELECT pg_advisory_lock(hashtext($1))', ['cxr_template']);
      const existing = (await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'cxr\\_template\\_%'`)).rows.map(
        (r) => r.datname,
      );
      for (const old of existing.filter((n) => n !== name)) await c.query(`DROP DATABASE IF EXISTS ${old}`).catch(() => undefined);
      if (existing.includes(name)) return;
      const building = `cxr_building_${randomBytes(6).toString('hex')}`;
      await c.query(`CREATE DATABASE ${building}`);
      const ds = await openDatabase({ url: urlFor(building), poolSize: 1 });
      await ds.destroy();
      await c.query(`ALTER DATABASE ${building} RENAME TO ${name}`);
    });
    return name;
  })();
  return template;
}

/** Creates a migrated database; `migrate: false` leaves it without schema. */
export async function createTestDatabase(opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `cxr_test_${randomBytes(6).toString('hex')}`;
  const from = opts.migrate === false ? '' : ` TEMPLATE ${await migratedTemplate()}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}${from}`));
  const url = urlFor(name);
  const ds = opts.migrate === false ? null : await openDatabase({ url, poolSize: 8 });
  const clients: pg.Client[] = [];
  return {
    name,
    url,
    get ds(): DataSource {
      if (!ds) throw new Error('database created without migrations');
      return ds;
    },
    superuser: async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      clients.push(c);
      return c;
    },
    drop: async () => {
      for (const c of clients) await c.end().catch(() => undefined);
      if (ds?.isInitialized) await ds.destroy();
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/** An instance of study `uid` (series n) with fixed, valid fields; `fields` overrides any. */
export function instanceOf(uid: string, n: number, fields: Partial<NewStudy> = {}): NewStudy {
  return {
    id: randomUUID(),
    studyInstanceUid: uid,
    seriesInstanceUid: `${uid}.${n}`,
    sopInstanceUid: `${uid}.${n}.1`,
    sopClassUid: null,
    patientPseudonym: null,
    modality: 'CR',
    viewPosition: 'PA',
    bodyPart: 'CHEST',
    transferSyntax: null,
    imageRows: 10,
    imageColumns: 10,
    sha256: 'a'.repeat(64),
    sizeBytes: '100',
    submittedBy: 'ws',
    receivedAt: new Date(),
    ...fields,
  };
}

/**
 * Makes COMMIT fail for a transaction that inserted a row of `table` whose `column` is `value`:
 * a deferred constraint trigger, checked after everything the transaction wrote (its audit row
 * too). For tests of what survives a transaction that does not commit.
 */
export async function failAtCommit(db: TestDatabase, table: string, column: string, value: string): Promise<void> {
  const name = `fail_at_commit_${randomBytes(4).toString('hex')}`;
  const su = await db.superuser();
  try {
    await su.query(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.${column}::text = ${pg.escapeLiteral(value)} THEN RAISE EXCEPTION 'refused at commit'; END IF; RETURN NULL; END $$`);
    await su.query(`CREATE CONSTRAINT TRIGGER ${name} AFTER INSERT ON ${table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${name}()`);
  } finally {
    await su.end();
  }
}

/** A positive prediction by the two registered models, as the engine would record one. */
export function positivePrediction(segmenterId: number, classifierId: number): NewPrediction {
  return {
    segmenterId,
    classifierId,
    probability: 0.8,
    threshold: 0.5,
    targetRecall: 0.95,
    decision: 'positive',
    flagged: true,
    flagReasons: ['positive'],
    ttaViews: 2,
    ttaSpread: 0.01,
    qcFlags: [],
    lungAreaFraction: 0.3,
    timingsMs: {},
    report: {},
  };
}
