/** Login CSRF: a sign-in posted by another site's page is refused; the app's own page, and clients that are not browsers, sign in. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../support/api.js';

let h: Harness;
let password: string;
before(async () => {
  h = await startHarness();
  const created = await h.http
    .post('/v1/admin/users')
    .set('Authorization', `Bearer ${h.token('admin')}`)
    .send({ id: 'mallory', role: 'clinician', displayName: 'Mallory' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  password = created.body.password as string;
});
after(async () => {
  await h?.close();
});

const signIn = (site?: string) => {
  const r = h.http.post('/v1/auth/session').set('Content-Type', 'application/x-www-form-urlencoded');
  if (site) r.set('Sec-Fetch-Site', site);
  return r.send(`username=mallory&password=${encodeURIComponent(password)}`);
};

test('a sign-in form posted from another site (or a sibling site) is 403 E_CSRF and sets no cookie; the same origin, a typed address and non-browser clients sign in', async () => {
  for (const site of ['cross-site', 'same-site']) {
    const r = await signIn(site);
    assert.equal(r.status, 403, site);
    assert.equal(r.body.error.code, 'E_CSRF');
    assert.equal(r.headers['set-cookie'], undefined, site);
  }
  for (const site of ['same-origin', 'none', undefined]) {
    const r = await signIn(site);
    assert.equal(r.status, 200, `${site}: ${JSON.stringify(r.body)}`);
    assert.match(String(r.headers['set-cookie']), /cxr_session=/);
  }
});
