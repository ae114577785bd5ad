/**
 * Authentication and roles: tampered tokens are 401, wrong roles 403 on every route, and the
 * client-credentials and password flows issue tokens that stop working on revocation.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { routes } from '../../src/api/app.js';
import { ROLES, type Role } from '../../src/db/entities.js';
import { startHarness, type Harness } from '../support/api.js';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.close();
});

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

function claims(over: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return { sub: 'dr-x', role: 'clinician', kind: 'operator', iss: 'cxr-triage', aud: 'cxr-triage-api', iat: now, exp: now + 300, ...over };
}

async function expect401(token: string, why: RegExp) {
  const r = await h.http.get('/v1/worklist').set('Authorization', `Bearer ${token}`);
  assert.equal(r.status, 401, `${why}: got ${r.status} ${JSON.stringify(r.body)}`);
  assert.equal(r.body.error.code, 'E_UNAUTHENTICATED');
  assert.match(r.body.error.message, why);
  assert.match(r.headers['www-authenticate'], /^Bearer/);
}

test('a valid token reaches the route', async () => {
  const r = await h.http.get('/v1/worklist').set('Authorization', `Bearer ${jwt.sign(claims(), h.settings.jwt.secret, { algorithm: 'HS256' })}`);
  assert.equal(r.status, 200);
});

test('no token, or a non-bearer Authorization header, is 401', async () => {
  const none = await h.http.get('/v1/worklist');
  assert.equal(none.status, 401);
  assert.equal(none.body.error.code, 'E_UNAUTHENTICATED');
  const basic = await h.http.get('/v1/worklist').set('Authorization', 'Basic dXNlcjpwdw==');
  assert.equal(basic.status, 401);
});

test("alg 'none' is refused", async () => {
  await expect401(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`, /invalid token/);
});

test('a token signed with another key is refused', async () => {
  await expect401(jwt.sign(claims(), randomBytes(32), { algorithm: 'HS256' }), /invalid signature/);
});

test('an algorithm other than the pinned HS256 is refused, even with the right key', async () => {
  await expect401(jwt.sign(claims(), h.settings.jwt.secret, { algorithm: 'HS512' }), /invalid algorithm/);
});

test('an expired token is refused', async () => {
  const past = Math.floor(Date.now() / 1000) - 3600;
  await expect401(jwt.sign(claims({ iat: past - 60, exp: past }), h.settings.jwt.secret, { algorithm: 'HS256' }), /expired/);
});

test('a token for another audience is refused', async () => {
  await expect401(jwt.sign(claims({ aud: 'some-other-api' }), h.settings.jwt.secret, { algorithm: 'HS256' }), /audience invalid/);
});

test('a token from another issuer is refused', async () => {
  await expect401(jwt.sign(claims({ iss: 'evil' }), h.settings.jwt.secret, { algorithm: 'HS256' }), /issuer invalid/);
});

test('a payload edited after signing (role escalation) is refused', async () => {
  const good = jwt.sign(claims({ role: 'workstation' }), h.settings.jwt.secret, { algorithm: 'HS256' });
  const [head, , sig] = good.split('.');
  await expect401(`${head}.${b64(claims({ role: 'admin' }))}.${sig}`, /invalid signature/);
});

test('a token without expiry, without a valid role, or without a subject is refused', async () => {
  const { exp: _e, ...noExp } = claims();
  await expect401(jwt.sign(noExp, h.settings.jwt.secret, { algorithm: 'HS256' }), /no expiry/);
  await expect401(jwt.sign(claims({ role: 'root' }), h.settings.jwt.secret, { algorithm: 'HS256' }), /no valid role/);
  const { sub: _s, ...noSub } = claims();
  await expect401(jwt.sign(noSub, h.settings.jwt.secret, { algorithm: 'HS256' }), /no subject/);
});

/** A request that reaches the handler for each route; the answer may be 4xx for other reasons, never 401/403. */
function requestFor(method: string, path: string, role: Role) {
  const p = path.replace(':id', randomUUID()).replace(':name', 'classifier').replace(':version', 'none');
  const req = (h.http as unknown as Record<string, (p: string) => import('supertest').Test>)[method](p).set('Authorization', `Bearer ${h.token(role)}`);
  if (method === 'post') return req.set('Content-Type', 'application/json').send('{}');
  // an event stream never ends by itself: the status is read from the headers and the stream closed
  if (path === '/v1/events')
    return req.buffer(false).parse((raw, done) => {
      const res = raw as unknown as import('node:http').IncomingMessage;
      if (String(res.headers['content-type']).startsWith('text/event-stream')) {
        res.destroy();
        done(null, {});
        return;
      }
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => done(null, JSON.parse(text)));
    });
  return req;
}

test('every protected route answers 403 to every role it does not allow, and lets its own roles through', async () => {
  let checked = 0;
  for (const r of routes) {
    if (r.roles === 'public') continue;
    for (const role of ROLES) {
      const res = await requestFor(r.method, r.path, role);
      if (r.roles.includes(role)) {
        assert.ok(![401, 403].includes(res.status), `${role} ${r.method.toUpperCase()} ${r.path}: ${res.status} ${JSON.stringify(res.body)}`);
      } else {
        assert.equal(res.status, 403, `${role} ${r.method.toUpperCase()} ${r.path}: ${res.status}`);
        assert.equal(res.body.error.code, 'E_FORBIDDEN');
      }
      checked++;
    }
  }
  assert.equal(checked, routes.filter((r) => r.roles !== 'public').length * ROLES.length);
});

test('a forbidden attempt on an audited route is itself audited with its outcome', async () => {
  const r = await h.http.get('/v1/predictions').set('Authorization', `Bearer ${h.token('clinician', 'dr-nosy')}`);
  assert.equal(r.status, 403);
  const rows: { action: string; outcome: string; role: string }[] = await h.db.ds.query(`SELECT action, outcome, role FROM audit_log WHERE actor = 'dr-nosy'`);
  assert.deepEqual(rows, [{ action: 'predictions.read', outcome: 'E_FORBIDDEN', role: 'clinician' }]);
});

test('client credentials: admin creates a client, it gets a token (JSON, form, Basic), revocation ends it', async () => {
  const admin = h.token('admin');
  const created = await h.http
    .post('/v1/admin/clients')
    .set('Authorization', `Bearer ${admin}`)
    .send({ id: 'ws-radiology-1', role: 'workstation', description: 'DR room 1' });
  assert.equal(created.status, 201);
  const secret: string = created.body.secret;
  assert.ok(secret.length >= 40, 'secret.length >= 40');
  const stored: { secret_hash: string }[] = await h.db.ds.query(`SELECT secret_hash FROM api_clients WHERE id = 'ws-radiology-1'`);
  assert.match(stored[0].secret_hash, /^scrypt\$16384\$8\$1\$/);
  assert.ok(!stored[0].secret_hash.includes(secret), '!stored[0].secret_hash.includes(secret)');

  const viaJson = await h.http.post('/v1/auth/token').send({ grant_type: 'client_credentials', client_id: 'ws-radiology-1', client_secret: secret });
  assert.equal(viaJson.status, 200);
  assert.equal(viaJson.body.token_type, 'Bearer');
  assert.equal(viaJson.body.role, 'workstation');
  const viaForm = await h.http
    .post('/v1/auth/token')
    .type('form')
    .send({ grant_type: 'client_credentials', client_id: 'ws-radiology-1', client_secret: secret });
  assert.equal(viaForm.status, 200);
  const viaBasic = await h.http
    .post('/v1/auth/token')
    .set('Authorization', `Basic ${Buffer.from(`ws-radiology-1:${secret}`).toString('base64')}`)
    .type('form')
    .send({ grant_type: 'client_credentials' });
  assert.equal(viaBasic.status, 200);

  const token: string = viaJson.body.access_token;
  const decoded = jwt.decode(token) as jwt.JwtPayload;
  assert.deepEqual(
    [decoded.sub, decoded.role, decoded.kind, decoded.iss, decoded.aud],
    ['ws-radiology-1', 'workstation', 'client', 'cxr-triage', 'cxr-triage-api'],
  );
  // a workstation may post but not read the worklist
  assert.equal((await h.http.get('/v1/worklist').set('Authorization', `Bearer ${token}`)).status, 403);

  const wrong = await h.http.post('/v1/auth/token').send({ client_id: 'ws-radiology-1', client_secret: `${secret}x` });
  assert.equal(wrong.status, 401);
  const unknown = await h.http.post('/v1/auth/token').send({ client_id: 'nobody', client_secret: secret });
  assert.equal(unknown.status, 401);
  assert.equal(unknown.body.error.message, wrong.body.error.message);

  const revoked = await h.http.delete('/v1/admin/clients/ws-radiology-1').set('Authorization', `Bearer ${admin}`);
  assert.equal(revoked.status, 204);
  const after = await h.http.post('/v1/studies').set('Authorization', `Bearer ${token}`).set('Content-Type', 'application/dicom').send(Buffer.from('x'));
  assert.equal(after.status, 401);
  assert.match(after.body.error.message, /revoked/);
  assert.equal((await h.http.post('/v1/auth/token').send({ client_id: 'ws-radiology-1', client_secret: secret })).status, 401);
  assert.equal((await h.http.delete('/v1/admin/clients/ws-radiology-1').set('Authorization', `Bearer ${admin}`)).status, 404);
  const dup = await h.http.post('/v1/admin/clients').set('Authorization', `Bearer ${admin}`).send({ id: 'ws-radiology-1', role: 'workstation' });
  assert.equal(dup.status, 409);

  const audit: { outcome: string }[] = await h.db.ds.query(
    `SELECT outcome FROM audit_log WHERE action = 'auth.token' AND actor = 'ws-radiology-1' ORDER BY seq`,
  );
  assert.deepEqual(
    audit.map((a) => a.outcome),
    ['ok', 'ok', 'ok', 'E_UNAUTHENTICATED', 'E_UNAUTHENTICATED'],
  );
  const list = await h.http.get('/v1/admin/clients').set('Authorization', `Bearer ${admin}`);
  assert.equal(list.status, 200);
  const row = list.body.items.find((c: { id: string }) => c.id === 'ws-radiology-1');
  assert.ok(row.revokedAt, 'row.revokedAt');
  assert.equal('secretHash' in row || 'secret' in row, false);
});

test('users: password grant for a person, a generated password when none is given, disabling ends it', async () => {
  const admin = h.token('admin');
  const created = await h.http
    .post('/v1/admin/users')
    .set('Authorization', `Bearer ${admin}`)
    .send({ id: 'dr.house@example.org', role: 'clinician', displayName: 'Dr House', password: 'correct horse battery' });
  assert.equal(created.status, 201);
  assert.equal(created.body.password, undefined);
  const generated = await h.http.post('/v1/admin/users').set('Authorization', `Bearer ${admin}`).send({ id: 'auditor.a', role: 'auditor' });
  assert.equal(generated.status, 201);
  assert.ok(generated.body.password.length >= 40, 'generated.body.password.length >= 40');
  assert.equal(
    (await h.http.post('/v1/admin/users').set('Authorization', `Bearer ${admin}`).send({ id: 'short.pw', role: 'auditor', password: 'abc' })).status,
    400,
  );
  assert.equal((await h.http.post('/v1/admin/users').set('Authorization', `Bearer ${admin}`).send({ id: 'x y', role: 'auditor' })).status, 400);
  assert.equal((await h.http.post('/v1/admin/users').set('Authorization', `Bearer ${admin}`).send({ id: 'bad.role', role: 'root' })).status, 400);

  const tok = await h.http.post('/v1/auth/token').send({ grant_type: 'password', username: 'dr.house@example.org', password: 'correct horse battery' });
  assert.equal(tok.status, 200);
  assert.equal(tok.body.role, 'clinician');
  const bearer = `Bearer ${tok.body.access_token}`;
  assert.equal((await h.http.get('/v1/worklist').set('Authorization', bearer)).status, 200);
  assert.equal((await h.http.post('/v1/auth/token').send({ grant_type: 'password', username: 'dr.house@example.org', password: 'wrong' })).status, 401);

  assert.equal((await h.http.delete('/v1/admin/users/dr.house@example.org').set('Authorization', `Bearer ${admin}`)).status, 204);
  assert.equal((await h.http.get('/v1/worklist').set('Authorization', bearer)).status, 401);
  const users = await h.http.get('/v1/admin/users').set('Authorization', `Bearer ${admin}`);
  assert.deepEqual(
    users.body.items.map((u: { id: string; disabledAt: string | null }) => [u.id, u.disabledAt !== null]),
    [
      ['dr.house@example.org', true],
      ['auditor.a', false],
    ],
  );
});

test('the token endpoint refuses malformed requests with 400 and other media types with 415', async () => {
  assert.equal((await h.http.post('/v1/auth/token').set('Content-Type', 'text/plain').send('client_id=a')).status, 415);
  assert.equal((await h.http.post('/v1/auth/token').set('Content-Type', 'application/json').send('{not json')).status, 400);
  assert.equal((await h.http.post('/v1/auth/token').send({ grant_type: 'implicit', client_id: 'a', client_secret: 'b' })).status, 400);
  assert.equal((await h.http.post('/v1/auth/token').send({ grant_type: 'client_credentials' })).status, 400);
});
