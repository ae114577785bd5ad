/** Long-lived operator tokens on record: minted by `cxr-triage token`, listed, revoked (CLI and admin API), refused once revoked. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { signToken } from '../../src/api/tokens.js';
import { startHarness, type Harness } from '../support/api.js';
import { runCli } from '../support/cli.js';

let h: Harness;
let env: Record<string, string>;
const secret = randomBytes(24).toString('hex');

before(async () => {
  h = await startHarness({ jwt: { secret: Buffer.from(secret, 'utf8'), issuer: 'cxr-triage', audience: 'cxr-triage-api', ttlSeconds: 600 } });
  env = { DATABASE_URL: h.db.url, CXR_JWT_SECRET: secret, CXR_DATA_DIR: join(h.root, 'data'), CXR_TOKEN_TTL_S: '600' };
});
after(async () => {
  await h?.close();
});

const mint = async (args: string[]) => {
  const r = await runCli(['token', ...args], env);
  assert.equal(r.code, 0, r.stderr);
  const id = /token ([0-9a-f-]{36}) /.exec(r.stderr)?.[1];
  assert.ok(id, r.stderr);
  return { token: r.stdout.trim(), id };
};
const auditRows = async (action: string): Promise<{ actor: string; detail: Record<string, unknown> }[]> =>
  h.db.ds.query('SELECT actor, detail FROM audit_log WHERE action = $1 ORDER BY seq', [action]);

test('a 10-year token minted by the CLI is on record, works until revoked by `token revoke`, then is refused with E_UNAUTHENTICATED; both audited', async () => {
  const { token, id } = await mint([
    '--role',
    'clinician',
    '--sub',
    'pacs-forward',
    '--ttl',
    String(10 * 365 * 24 * 3600),
    '--description',
    'Orthanc DICOMweb',
  ]);
  const listed = await runCli(['token', 'list'], env);
  assert.equal(listed.code, 0, listed.stderr);
  const rows = listed.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const row = rows.find((r) => r.id === id);
  assert.equal(row.subject, 'pacs-forward');
  assert.equal(row.role, 'clinician');
  assert.equal(row.description, 'Orthanc DICOMweb');
  assert.equal(row.revokedAt, null);
  assert.ok(Date.parse(row.expiresAt) - Date.parse(row.issuedAt) >= 9 * 365 * 24 * 3600 * 1000);
  assert.ok(!listed.stdout.includes(token), 'the token itself is never listed');

  const ok = await h.http.get('/dicomweb/studies').set('Authorization', `Bearer ${token}`);
  assert.equal(ok.status, 200);

  const revoked = await runCli(['token', 'revoke', id], env);
  assert.equal(revoked.code, 0, revoked.stderr);
  const refused = await h.http.get('/dicomweb/studies').set('Authorization', `Bearer ${token}`);
  assert.equal(refused.status, 401);
  assert.equal(refused.body.error.code, 'E_UNAUTHENTICATED');
  assert.match(refused.body.error.message, /revoked/);

  const again = await runCli(['token', 'revoke', id], env);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /^error E_NOT_FOUND/m);
  assert.equal((await runCli(['token', 'list'], env)).stdout.includes(id), false, 'revoked tokens leave the default list');
  assert.equal((await runCli(['token', 'list', '--all'], env)).stdout.includes(id), true);

  const created = await auditRows('admin.token.create');
  assert.ok(created.some((r) => r.detail.tokenId === id && r.detail.subject === 'pacs-forward' && r.actor.startsWith('operator:')));
  const revokes = await auditRows('admin.token.revoke');
  assert.equal(revokes.filter((r) => r.detail.tokenId === id).length, 1);
});

test('an admin lists and revokes operator tokens through the API (audited); other roles may not', async () => {
  const { token, id } = await mint(['--role', 'workstation', '--sub', 'ws-static', '--ttl', '31536000']);
  const admin = `Bearer ${(await mint(['--role', 'admin', '--sub', 'root-admin'])).token}`;
  const list = await h.http.get('/v1/admin/tokens').set('Authorization', admin);
  assert.equal(list.status, 200);
  const item = list.body.items.find((t: { id: string }) => t.id === id);
  assert.equal(item.subject, 'ws-static');
  assert.equal(item.role, 'workstation');
  assert.equal((await h.http.get('/v1/admin/tokens').set('Authorization', `Bearer ${token}`)).status, 403);

  assert.equal((await h.http.get('/dicomweb/studies').set('Authorization', `Bearer ${token}`)).status, 200);
  const del = await h.http.delete(`/v1/admin/tokens/${id}`).set('Authorization', admin);
  assert.equal(del.status, 204);
  const refused = await h.http.get('/dicomweb/studies').set('Authorization', `Bearer ${token}`);
  assert.equal(refused.status, 401);
  assert.equal(refused.body.error.code, 'E_UNAUTHENTICATED');
  assert.equal((await h.http.delete(`/v1/admin/tokens/${id}`).set('Authorization', admin)).status, 404);
  assert.equal((await h.http.delete('/v1/admin/tokens/not-a-uuid').set('Authorization', admin)).status, 404);

  const revokes = await auditRows('admin.token.revoke');
  const ok = revokes.filter((r) => r.detail.tokenId === id);
  assert.equal(ok.length, 2, 'the revocation and the refused second one');
  assert.equal(ok[0].actor, 'root-admin');
  const after = (await h.http.get('/v1/admin/tokens?all=true').set('Authorization', admin)).body.items.find((t: { id: string }) => t.id === id);
  assert.equal(after.revokedBy, 'root-admin');
  assert.ok(after.revokedAt);
});

test("a long-lived operator token that is not on record is refused; a short one (an access token's lifetime) is accepted", async () => {
  const jwt = h.settings.jwt;
  const long = signToken(jwt, { sub: 'forged', role: 'clinician', kind: 'operator' }, 10 * 365 * 24 * 3600).token;
  const r = await h.http.get('/dicomweb/studies').set('Authorization', `Bearer ${long}`);
  assert.equal(r.status, 401);
  assert.equal(r.body.error.code, 'E_UNAUTHENTICATED');
  assert.match(r.body.error.message, /on record/);
  const short = signToken(jwt, { sub: 'short', role: 'clinician', kind: 'operator' }).token;
  assert.equal((await h.http.get('/dicomweb/studies').set('Authorization', `Bearer ${short}`)).status, 200);
});

test('`token` refuses a bad role or subject, and `token revoke` an id that is not a UUID', async () => {
  const bad = await runCli(['token', '--role', 'root', '--sub', 'x'], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /error E_BAD_ARGUMENT: --role must be one of/);
  assert.match((await runCli(['token', '--role', 'admin'], env)).stderr, /error E_BAD_ARGUMENT: --sub/);
  const notUuid = await runCli(['token', 'revoke', 'abc'], env);
  assert.equal(notUuid.code, 2);
  assert.match(notUuid.stderr, /E_NOT_FOUND/);
  assert.match((await runCli(['token', 'revoke', '--help'], env)).stdout, /revoke an operator token/);
});
