import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { EntityManager } from 'typeorm';
import { appendAuditInTransaction, listAudit } from '../../src/db/audit.js';
import { findActiveClient, findClient } from '../../src/db/principals.js';
import { CxrError } from '../../src/errors.js';
import { createClient, revokeActiveClient, type ClientAudit } from '../../src/service/clients.js';
import { verifySecret } from '../../src/service/credentials.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db?.drop();
});

const isCode = (code: string) => (e: unknown) => e instanceof CxrError && e.code === code;

const audit: ClientAudit = async (m: EntityManager, detail) => {
  await appendAuditInTransaction(m, { actor: 'admin-1', role: 'admin', action: 'admin.client.create', studyId: null, requestId: 'r-1', outcome: 'ok', detail });
};

test('a created client stores only a hash of the secret it returns, and its audit row names it', async () => {
  const { client, secret } = await createClient(db.ds, { id: 'ws-1', role: 'workstation', description: 'CR room 1', createdBy: 'admin-1' }, audit);
  assert.equal(client.id, 'ws-1');
  assert.equal(client.role, 'workstation');
  assert.equal(client.createdBy, 'admin-1');
  assert.notEqual(client.secretHash, secret);
  assert.ok(await verifySecret(secret, client.secretHash));
  const rows = (await listAudit(db.ds, { limit: 100 })).items.filter((r) => r.action === 'admin.client.create');
  assert.deepEqual(
    rows.map((r) => r.detail),
    [{ clientId: 'ws-1', clientRole: 'workstation' }],
  );
});

test('an id that is taken, even by a revoked client, is E_CONFLICT', async () => {
  await createClient(db.ds, { id: 'ws-2', role: 'workstation', description: '', createdBy: 'admin-1' }, audit);
  await assert.rejects(createClient(db.ds, { id: 'ws-2', role: 'auditor', description: '', createdBy: 'admin-1' }, audit), isCode('E_CONFLICT'));
  await revokeActiveClient(db.ds, 'ws-2');
  assert.equal(await findActiveClient(db.ds, 'ws-2'), null);
  await assert.rejects(createClient(db.ds, { id: 'ws-2', role: 'workstation', description: '', createdBy: 'admin-1' }, audit), isCode('E_CONFLICT'));
  await assert.rejects(revokeActiveClient(db.ds, 'ws-2'), isCode('E_NOT_FOUND'));
});

test('a badly shaped id is refused before anything is written', async () => {
  for (const id of ['ab', 'x'.repeat(65), 'ws 1', 'ws/1']) {
    await assert.rejects(createClient(db.ds, { id, role: 'workstation', description: '', createdBy: 'admin-1' }, audit), isCode('E_BAD_ARGUMENT'));
    assert.equal(await findClient(db.ds, id), null);
  }
});

test('when the audit row cannot be written the client is not created either', async () => {
  const failing: ClientAudit = async () => {
    throw new Error('audit table unavailable');
  };
  await assert.rejects(createClient(db.ds, { id: 'ws-3', role: 'workstation', description: '', createdBy: 'admin-1' }, failing), /audit table unavailable/);
  assert.equal(await findClient(db.ds, 'ws-3'), null);
});
