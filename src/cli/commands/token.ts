import type { Command } from 'commander';
import { loadConfig } from '../../app/config.js';
import { signToken } from '../../api/tokens.js';
import { isRole, ROLES } from '../../db/entities.js';
import { CxrError } from '../../errors.js';
import { action, parseInteger } from '../run.js';

export function register(program: Command): void {
  program
    .command('token')
    .description('mint an access token with the key the server verifies with (CXR_JWT_SECRET, or the development key in CXR_DATA_DIR); prints only the token')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
    .requiredOption('--sub <subject>', 'who the token speaks for (appears in the audit log)')
    .option('--ttl <seconds>', 'lifetime in seconds (default CXR_TOKEN_TTL_S, 3600)')
    .action(
      action(async (opts: { role: string; sub: string; ttl?: string }) => {
        if (!isRole(opts.role)) throw new CxrError('E_BAD_ARGUMENT', `--role must be one of ${ROLES.join(', ')} (got '${opts.role}')`);
        if (!/^[A-Za-z0-9._@-]{1,64}$/.test(opts.sub)) throw new CxrError('E_BAD_ARGUMENT', '--sub must be 1-64 characters of A-Z a-z 0-9 . _ @ -');
        const cfg = loadConfig();
        const ttl = opts.ttl === undefined ? cfg.jwt.ttlSeconds : parseInteger('--ttl', opts.ttl, 1);
        for (const n of cfg.notices) process.stderr.write(`warning: ${n}\n`);
        const { token } = signToken(cfg.jwt, { sub: opts.sub, role: opts.role, kind: 'operator' }, ttl);
        process.stdout.write(`${token}\n`);
      }),
    );
}
