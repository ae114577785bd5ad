import type { Command } from 'commander';
import { appendAudit, appendAuditInTransaction } from '../../db/audit.js';
import { isRole, ROLES } from '../../db/entities.js';
import { listClients } from '../../db/principals.js';
import { CxrError } from '../../errors.js';
import { CLIENT_ID_PATTERN, CLIENT_ID_SHAPE, createClient, revokeActiveClient } from '../../service/clients.js';
import { action } from '../run.js';
import { operator, withDatabase } from '../operator.js';
import { randomUUID } from 'node:crypto';

export function register(program: Command): void {
  const client = program.command('client').description('manage API clients (workstations, integrations) in the service database');

  client
    .command('add')
    .description('create a client and print its generated secret (shown once; only a scrypt hash is stored)')
    .requiredOption('--id <id>', `client id, ${CLIENT_ID_SHAPE}`)
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
    .option('--description <text>', 'what this client is', '')
    .option('--ae-title <aet>', 'calling AE title this workstation sends DIMSE C-STORE from (1-16 characters; compared upper-case)')
    .action(
      action(async (opts: { id: string; role: string; description: string; aeTitle?: string }) => {
        if (!isRole(opts.role)) throw new CxrError('E_BAD_ARGUMENT', `--role must be one of ${ROLES.join(', ')} (got '${opts.role}')`);
        const role = opts.role;
        if (!CLIENT_ID_PATTERN.test(opts.id)) throw new CxrError('E_BAD_ARGUMENT', `--id must be ${CLIENT_ID_SHAPE}`);
        const { secret } = await withDatabase(({ ds }) =>
          createClient(ds, { id: opts.id, role, description: opts.description, createdBy: operator(), aeTitle: opts.aeTitle }, (m, detail) =>
            appendAuditInTransaction(m, {
              actor: operator(),
              role: 'admin',
              action: 'admin.client.create',
              studyId: null,
              requestId: `cli-${randomUUID()}`,
              outcome: 'ok',
              detail: { ...detail, via: 'cli' },
            }).then(() => undefined),
          ),
        );
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
            process.stdout.write(
              `${JSON.stringify({ id: c.id, role: c.role, aeTitle: c.aeTitle, description: c.description, createdAt: c.createdAt, revokedAt: c.revokedAt })}\n`,
            );
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
          await revokeActiveClient(ds, opts.id);
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
