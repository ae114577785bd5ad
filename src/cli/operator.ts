/** What the operator commands (client, user) share: the service database of this data directory, and who acts. */
import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import type { EntityManager } from 'typeorm';
import { loadConfig } from '../app/config.js';
import { openServiceDatabase } from '../app/database.js';
import { appendAuditInTransaction } from '../db/audit.js';

export async function withDatabase<T>(fn: (db: Awaited<ReturnType<typeof openServiceDatabase>>) => Promise<T>): Promise<T> {
  const cfg = loadConfig();
  const db = await openServiceDatabase(cfg);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** Operator actions are audited like API ones, under the operator's login name. */
export function operator(): string {
  return `operator:${userInfo().username}`;
}

/** Appends an operator's audit row inside the transaction that makes the change. */
export async function auditOperator(m: EntityManager, action: string, detail: Record<string, unknown>): Promise<void> {
  await appendAuditInTransaction(m, {
    actor: operator(),
    role: 'admin',
    action,
    studyId: null,
    requestId: `cli-${randomUUID()}`,
    outcome: 'ok',
    detail: { ...detail, via: 'cli' },
  });
}
