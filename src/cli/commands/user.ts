import type { Command } from 'commander';
import { isRole } from '../../db/entities.js';
import { listUsers } from '../../db/principals.js';
import { CxrError } from '../../errors.js';
import { createUser, disableActiveUser, MIN_PASSWORD_LENGTH, USER_ID_SHAPE } from '../../service/users.js';
import { action } from '../run.js';
import { auditOperator, operator, withDatabase } from '../operator.js';

const PEOPLE = ['clinician', 'auditor', 'admin'] as const;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  // one line: the password without its line ending
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export function register(program: Command): void {
  const user = program.command('user').description('manage people who sign in to the web app (clinician, auditor, admin)');

  user
    .command('add')
    .description('create a person; prints a generated password once (only a scrypt hash is stored) unless --password-stdin gives one')
    .argument('<name>', `user id, ${USER_ID_SHAPE}`)
    .requiredOption('--role <role>', `one of ${PEOPLE.join(', ')}`)
    .option('--display-name <text>', 'the name shown in the app', '')
    .option('--password-stdin', `read the password (at least ${MIN_PASSWORD_LENGTH} characters) from standard input`)
    .action(
      action(async (name: string, opts: { role: string; displayName: string; passwordStdin?: boolean }) => {
        if (!isRole(opts.role) || opts.role === 'workstation')
          throw new CxrError('E_BAD_ARGUMENT', `--role must be one of ${PEOPLE.join(', ')} (got '${opts.role}')`);
        const role = opts.role;
        const password = opts.passwordStdin ? await readStdin() : undefined;
        const { generatedPassword } = await withDatabase(({ ds }) =>
          createUser(ds, { id: name, role, displayName: opts.displayName, password, createdBy: operator() }, (m, detail) =>
            auditOperator(m, 'admin.user.create', detail),
          ),
        );
        if (generatedPassword !== null) {
          process.stderr.write(`user '${name}' (${role}) created; the password follows and will not be shown again:\n`);
          process.stdout.write(`${generatedPassword}\n`);
        } else {
          process.stderr.write(`user '${name}' (${role}) created with the password read from standard input\n`);
        }
        process.stderr.write('sign in at http://127.0.0.1:8080/app/ (or wherever the service listens)\n');
      }),
    );

  user
    .command('list')
    .description('list users as JSON lines (disabled ones included)')
    .action(
      action(async () => {
        await withDatabase(async ({ ds }) => {
          for (const u of await listUsers(ds)) {
            process.stdout.write(
              `${JSON.stringify({ id: u.id, role: u.role, displayName: u.displayName, createdAt: u.createdAt, disabledAt: u.disabledAt })}\n`,
            );
          }
        });
      }),
    );

  user
    .command('disable')
    .description('disable a user: their sessions end and their tokens stop working at once')
    .argument('<name>', 'user id')
    .action(
      action(async (name: string) => {
        await withDatabase(({ ds }) => disableActiveUser(ds, name, (m) => auditOperator(m, 'admin.user.disable', { userId: name })));
        process.stderr.write(`user '${name}' disabled\n`);
      }),
    );
}
