/**
 * A fresh PostgreSQL database per test file on the machine's server (127.0.0.1:5432,
 * database `test` for the admin connection), migrated, and dropped at the end: test files run
 * in parallel and never see each other's rows.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import type { DataSource } from 'typeorm';
import { openDatabase } from '../../src/db/data-source.js';
import type { NewStudy } from '../../src/db/studies.js';

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

/** Creates an empty database; `migrate: false` leaves it without schema. */
export async function createTestDatabase(opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `cxr_test_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
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
