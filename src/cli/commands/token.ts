import type { Command } from 'commander';
import { loadConfig } from '../../app/config.js';
import { signToken } from '../../api/tokens.js';
import { isRole, ROLES } from '../../db/entities.js';
import { listOperatorTokens } from '../../db/operator-tokens.js';
import { operatorTokenView } from '../../api/views.js';
import { CxrError } from '../../errors.js';
import { recordOperatorToken, revokeOperatorToken, SUBJECT_PATTERN } from '../../service/operator-tokens.js';
import { action, parseInteger } from '../run.js';
import { auditOperator, operator, withDatabase } from '../operator.js';

/** the longest operator token: 10 years */
const MAX_TTL_S = 10 * 365 * 24 * 3600;

export function register(program: Command): void {
  // --role/--sub are checked by hand: commander would demand a parent's required options of `token list` too
  const token = program
    .command('token')
    .description(
      'mint an operator token with the key the server verifies with (CXR_JWT_SECRET, or the development key in CXR_DATA_DIR), ' +
        'recorded by its id in the service database so it can be revoked; prints only the token. `token list` and `token revoke ID` manage them',
    )
    .option('--role <role>', `one of ${ROLES.join(', ')} (required to mint)`)
    .option('--sub <subject>', 'who the token speaks for (appears in the audit log; required to mint)')
    .option(
      '--ttl <seconds>',
      'lifetime in seconds (default CXR_TOKEN_TTL_S, 3600); a PACS that sends a static header may get years, and is revoked with `token revoke`',
    )
    .option('--description <text>', 'what this token is for (shown by `token list`)', '')
    .action(
      action(async (opts: { role?: string; sub?: string; ttl?: string; description: string }) => {
        if (!isRole(opts.role)) throw new CxrError('E_BAD_ARGUMENT', `--role must be one of ${ROLES.join(', ')} (got '${opts.role ?? ''}')`);
        if (!opts.sub || !SUBJECT_PATTERN.test(opts.sub)) throw new CxrError('E_BAD_ARGUMENT', '--sub must be 1-64 characters of A-Z a-z 0-9 . _ @ -');
        const cfg = loadConfig();
        const ttl = opts.ttl === undefined ? cfg.jwt.ttlSeconds : parseInteger('--ttl', opts.ttl, 1);
        // beyond a date PostgreSQL (and a JWT reader) can hold; a year is already long for a token
        if (ttl > MAX_TTL_S) throw new CxrError('E_BAD_ARGUMENT', `--ttl must be at most ${MAX_TTL_S} s (10 years), got ${opts.ttl}`);
        for (const n of cfg.notices) process.stderr.write(`warning: ${n}\n`);
        const signed = signToken(cfg.jwt, { sub: opts.sub, role: opts.role, kind: 'operator' }, ttl);
        const role = opts.role;
        const sub = opts.sub;
        // on record before it is printed: a token that was never recorded cannot be revoked
        await withDatabase(({ ds }) =>
          recordOperatorToken(
            ds,
            { id: signed.id, subject: sub, role, description: opts.description, createdBy: operator(), issuedAt: signed.issuedAt, expiresAt: signed.expiresAt },
            (m, detail) => auditOperator(m, 'admin.token.create', detail),
          ),
        );
        process.stderr.write(
          `token ${signed.id} (${role}, ${sub}) valid until ${signed.expiresAt.toISOString()}; revoke with: cxr-triage token revoke ${signed.id}\n`,
        );
        process.stdout.write(`${signed.token}\n`);
      }),
    );

  token
    .command('list')
    .description('list operator tokens on record as JSON lines, newest first (never the tokens themselves)')
    .option('--all', 'include revoked and expired tokens')
    .action(
      action(async (opts: { all?: boolean }) => {
        await withDatabase(async ({ ds }) => {
          for (const t of await listOperatorTokens(ds, { all: opts.all === true })) process.stdout.write(`${JSON.stringify(operatorTokenView(t))}\n`);
        });
      }),
    );

  token
    .command('revoke')
    .description('revoke an operator token by its id: refused from its next request on (audited)')
    .argument('<id>', 'the token id (from `token list`, or printed when it was minted)')
    .action(
      action(async (id: string) => {
        const row = await withDatabase(({ ds }) => revokeOperatorToken(ds, id, operator(), (m, detail) => auditOperator(m, 'admin.token.revoke', detail)));
        process.stderr.write(`token ${row.id} (${row.role}, ${row.subject}) revoked\n`);
      }),
    );
}
