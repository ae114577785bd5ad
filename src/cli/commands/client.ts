import type { Command } from 'commander';
import { loadConfig } from '../../app/config.js';
import { generateSecret, hashSecret } from '../../api/credentials.js';
import { openServiceDatabase } from '../../app/database.js';
import { appendAudit } from '../../db/audit.js';
import { isRole, ROLES } from '../../db/entities.js';
import { insertClient, listClients, revokeClient } from '../../db/principals.js';
import { CxrError } from '../../errors.js';
import { action } from '../run.js';
import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';

async function withDatabase<T>(fn: (db: Awaited<ReturnType<typeof openServiceDatabase>>) => Promise<T>): Promise<T> {
  const cfg = loadConfig();
  const db = await openServiceDatabase(cfg);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** Operator actions are audited like API ones, under the operator's login name. */
function operator(): string {
  return `operator:${userInfo().username}`;
}

export function register(program: Command): void {
  const client = program.command('client').description('manage API clients (workstations, integrations) in the service database');

  client
    .command('add')
    .description('create a client and print its generated secret (shown once; only a scrypt hash is stored)')
    .requiredOption('--id <id>', 'client id, 3-64 characters of A-Z a-z 0-9 . _ -')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
    .option('--description <text>', 'what this client is', '')
    .action(
      action(async (opts: { id: string; role: string; description: string }) => {
        if (!isRole(opts.role)) throw new CxrError('E_BAD_ARGUMENT', `--role must be one of ${ROLES.join(', ')} (got '${opts.role}')`);
        const role = opts.role;
        if (!/^[A-Za-z0-9._-]{3,64}$/.test(opts.id)) throw new CxrError('E_BAD_ARGUMENT', '--id must be 3-64 characters of A-Z a-z 0-9 . _ -');
        const secret = generateSecret();
        const secretHash = await hashSecret(secret);
        await withDatabase(async ({ ds }) => {
          const created = await ds.transaction(async (m) => {
            const ok = await insertClient(m, { id: opts.id, role, secretHash, description: opts.description, createdBy: operator() });
            return ok;
          });
          if (!created) throw new CxrError('E_CONFLICT', `client id '${opts.id}' is taken (revoked ids are not reused)`);
          await appendAudit(ds, {
            actor: operator(),
            role: 'admin',
            action: 'admin.client.create',
            studyId: null,
            requestId: `cli-${randomUUID()}`,
            outcome: 'ok',
            detail: { clientId: opts.id, clientRole: role, via: 'cli' },
          });
        });
        process.stderr.write(`client '${opts.id}' (${role}) created; its secret follows and will not be shown again:\n`);
        process.stdout.write(`${secret}\n`);
        process.stderr.write(
          `get a token: curl -s -H 'Content-Type: application/json' -d '{"grant_type":"client_credentials","client_id":"${opts.id}","client_secret":"<secret>"}' http://127.0.0.1:8080/v1/auth/token\n`,
        );
      }),
    );

  client
    .command('list')
    .description('list clients as JSON lines')
    .action(
      action(async () => {
        await withDatabase(async ({ ds }) => {
          for (const c of await listClients(ds)) {
            process.stdout.write(`${JSON.stringify({ id: c.id, role: c.role, description: c.description, createdAt: c.createdAt, revokedAt: c.revokedAt })}\n`);
          }
        });
      }),
    );

  client
    .command('revoke')
    .description('revoke a client: its tokens stop working at once')
    .requiredOption('--id <id>', 'client id')
    .action(
      action(async (opts: { id: string }) => {
        await withDatabase(async ({ ds }) => {
          if (!(await revokeClient(ds, opts.id))) throw new CxrError('E_NOT_FOUND', `no active client '${opts.id}'`);
          await appendAudit(ds, {
            actor: operator(),
            role: 'admin',
            action: 'admin.client.revoke',
            studyId: null,
            requestId: `cli-${randomUUID()}`,
            outcome: 'ok',
            detail: { clientId: opts.id, via: 'cli' },
          });
        });
        process.stderr.write(`client '${opts.id}' revoked\n`);
      }),
    );
}
