/** Administration: API clients, users, and which model versions serve. */
import { isRole, ROLES } from '../../db/entities.js';
import { listModels } from '../../db/models.js';
import { listOperatorTokens } from '../../db/operator-tokens.js';
import { listClients, listUsers } from '../../db/principals.js';
import { CxrError } from '../../errors.js';
import { CLIENT_ID_PATTERN, CLIENT_ID_SHAPE, createClient as createApiClient, revokeActiveClient } from '../../service/clients.js';
import { revokeOperatorToken } from '../../service/operator-tokens.js';
import { createUser as createUserAccount, disableActiveUser } from '../../service/users.js';
import { Query, readJsonObject } from '../http.js';
import { json, ref } from '../openapi-types.js';
import { principalOf, type Ctx, type RouteDef } from '../route.js';
import { clientView, modelView, operatorTokenView, userView } from '../views.js';

const USER_ID = /^[A-Za-z0-9._@-]{3,64}$/;
const errs = {
  '400': { description: 'Invalid body', content: json(ref('Error')) },
  '415': { description: 'Content-Type is not application/json', content: json(ref('Error')) },
};

function str(body: Record<string, unknown>, name: string, max: number, required: boolean): string | undefined {
  const v = body[name];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.length > max || (required && v.length === 0))
    throw new CxrError('E_BAD_REQUEST', `${name} must be a string of at most ${max} characters`);
  return v;
}

function roleOf(body: Record<string, unknown>) {
  if (!isRole(body.role)) throw new CxrError('E_BAD_REQUEST', `role must be one of ${ROLES.join(', ')}`);
  return body.role;
}

function pathId(c: Ctx, pattern: RegExp): string {
  const id = String(c.req.params.id ?? '');
  if (!pattern.test(id)) throw new CxrError('E_NOT_FOUND', `no such id '${id.slice(0, 64)}'`);
  return id;
}

export const createClient: RouteDef = {
  method: 'post',
  path: '/v1/admin/clients',
  roles: ['admin'],
  audit: 'admin.client.create',
  doc: {
    summary: 'Create an API client',
    tags: ['admin'],
    description: 'Returns the generated client secret once; only its scrypt hash is stored.',
    requestBody: { required: true, content: json(ref('ClientCreate')) },
    responses: {
      '201': { description: 'Created', content: json(ref('ClientCreated')) },
      ...errs,
      '409': { description: 'Id taken', content: json(ref('Error')) },
    },
  },
  async handle(c) {
    const body = await readJsonObject(c.req);
    const id = str(body, 'id', 64, true)!;
    if (!CLIENT_ID_PATTERN.test(id)) throw new CxrError('E_BAD_REQUEST', `id must be ${CLIENT_ID_SHAPE}`);
    const role = roleOf(body);
    const description = str(body, 'description', 500, false) ?? '';
    const aeTitle = body.aeTitle === null ? undefined : str(body, 'aeTitle', 64, false);
    const { client, secret } = await createApiClient(c.deps.ds, { id, role, description, createdBy: principalOf(c).sub, aeTitle }, (m, detail) =>
      c.auditIn(m, { action: 'admin.client.create', studyId: null, outcome: 'ok', detail: { ...detail, status: 201 } }),
    );
    return { status: 201, json: { ...clientView(client), secret }, headers: { 'Cache-Control': 'no-store' } };
  },
};

export const getClients: RouteDef = {
  method: 'get',
  path: '/v1/admin/clients',
  roles: ['admin'],
  audit: 'admin.client.list',
  doc: {
    summary: 'List API clients',
    tags: ['admin'],
    responses: { '200': { description: 'All clients, revoked included', content: json(ref('ClientList')) } },
  },
  async handle(c) {
    return { status: 200, json: { items: (await listClients(c.deps.ds)).map(clientView) } };
  },
};

export const deleteClient: RouteDef = {
  method: 'delete',
  path: '/v1/admin/clients/:id',
  roles: ['admin'],
  audit: 'admin.client.revoke',
  doc: {
    summary: 'Revoke an API client',
    tags: ['admin'],
    description: 'Its tokens stop working at once; the row stays for the audit trail.',
    responses: { '204': { description: 'Revoked' }, '404': { description: 'No active client with this id', content: json(ref('Error')) } },
  },
  async handle(c) {
    const id = pathId(c, CLIENT_ID_PATTERN);
    c.detail = { clientId: id };
    await revokeActiveClient(c.deps.ds, id);
    return { status: 204 };
  },
};

export const createUser: RouteDef = {
  method: 'post',
  path: '/v1/admin/users',
  roles: ['admin'],
  audit: 'admin.user.create',
  doc: {
    summary: 'Create a user',
    tags: ['admin'],
    description: 'A person who signs in with a password (grant_type=password). Without a password one is generated and returned once.',
    requestBody: { required: true, content: json(ref('UserCreate')) },
    responses: {
      '201': { description: 'Created', content: json(ref('UserCreated')) },
      ...errs,
      '409': { description: 'Id taken', content: json(ref('Error')) },
    },
  },
  async handle(c) {
    const body = await readJsonObject(c.req);
    const id = str(body, 'id', 64, true)!;
    const role = roleOf(body);
    const displayName = str(body, 'displayName', 200, false) ?? '';
    const given = str(body, 'password', 1024, false);
    const { user, generatedPassword } = await createUserAccount(
      c.deps.ds,
      { id, role, displayName, password: given, createdBy: principalOf(c).sub },
      (m, detail) => c.auditIn(m, { action: 'admin.user.create', studyId: null, outcome: 'ok', detail: { ...detail, status: 201 } }),
    );
    return {
      status: 201,
      json: { ...userView(user), ...(generatedPassword !== null ? { password: generatedPassword } : {}) },
      headers: { 'Cache-Control': 'no-store' },
    };
  },
};

export const getUsers: RouteDef = {
  method: 'get',
  path: '/v1/admin/users',
  roles: ['admin'],
  audit: 'admin.user.list',
  doc: { summary: 'List users', tags: ['admin'], responses: { '200': { description: 'All users, disabled included', content: json(ref('UserList')) } } },
  async handle(c) {
    return { status: 200, json: { items: (await listUsers(c.deps.ds)).map(userView) } };
  },
};

export const deleteUser: RouteDef = {
  method: 'delete',
  path: '/v1/admin/users/:id',
  roles: ['admin'],
  audit: 'admin.user.disable',
  doc: {
    summary: 'Disable a user',
    tags: ['admin'],
    responses: { '204': { description: 'Disabled' }, '404': { description: 'No active user with this id', content: json(ref('Error')) } },
  },
  async handle(c) {
    const id = pathId(c, USER_ID);
    c.detail = { userId: id };
    await disableActiveUser(c.deps.ds, id, (m) =>
      c.auditIn(m, { action: 'admin.user.disable', studyId: null, outcome: 'ok', detail: { userId: id, status: 204 } }),
    );
    return { status: 204 };
  },
};

export const getTokens: RouteDef = {
  method: 'get',
  path: '/v1/admin/tokens',
  roles: ['admin'],
  audit: 'admin.token.list',
  doc: {
    summary: 'List operator tokens',
    tags: ['admin'],
    description:
      'Operator tokens on record (minted by `cxr-triage token`), newest first; never the tokens themselves. Revoked and expired ones only with all=true.',
    query: [{ name: 'all', description: 'include revoked and expired tokens', schema: { type: 'boolean' } }],
    responses: { '200': { description: 'Tokens on record', content: json(ref('OperatorTokenList')) } },
  },
  async handle(c) {
    const all = new Query(c.req.query).bool('all') ?? false;
    return { status: 200, json: { items: (await listOperatorTokens(c.deps.ds, { all })).map(operatorTokenView) } };
  },
};

export const deleteToken: RouteDef = {
  method: 'delete',
  path: '/v1/admin/tokens/:id',
  roles: ['admin'],
  audit: 'admin.token.revoke',
  doc: {
    summary: 'Revoke an operator token',
    tags: ['admin'],
    description: 'Refused (401 E_UNAUTHENTICATED) from its next request on; the record stays for the audit trail.',
    responses: { '204': { description: 'Revoked' }, '404': { description: 'No unrevoked token with this id', content: json(ref('Error')) } },
  },
  async handle(c) {
    const id = String(c.req.params.id ?? '');
    c.detail = { tokenId: id.slice(0, 64) };
    await revokeOperatorToken(c.deps.ds, id, principalOf(c).sub, (m, detail) =>
      c.auditIn(m, { action: 'admin.token.revoke', studyId: null, outcome: 'ok', detail: { ...detail, status: 204 } }),
    );
    return { status: 204 };
  },
};

const MODEL_PART = /^[A-Za-z0-9._-]{1,100}$/;

export const activateModel: RouteDef = {
  method: 'post',
  path: '/v1/admin/models/:name/:version/activate',
  roles: ['admin'],
  audit: 'admin.model.activate',
  doc: {
    summary: 'Activate a model version',
    tags: ['admin', 'models'],
    description:
      'Loads models/<name>/<version> in place of the active model of its kind and swaps it in for new work; predictions record the versions that made them.',
    responses: {
      '200': { description: 'Activated; the model versions now', content: json(ref('ModelList')) },
      '404': { description: 'No such model version in the models directory', content: json(ref('Error')) },
      '409': {
        description: 'The version cannot be served (files differ from its manifest, or it does not load); the active one stays',
        content: json(ref('Error')),
      },
    },
  },
  async handle(c) {
    const name = String(c.req.params.name ?? '');
    const version = String(c.req.params.version ?? '');
    if (!MODEL_PART.test(name) || !MODEL_PART.test(version)) throw new CxrError('E_NOT_FOUND', 'no such model version');
    c.detail = { model: `${name}@${version}` };
    if (!c.deps.activateModel) throw new CxrError('E_CONFLICT', 'this server was started without model activation');
    const { shadowStopped } = await c.deps.activateModel(name, version, principalOf(c).sub);
    if (shadowStopped) c.detail = { ...c.detail, shadowStopped };
    return { status: 200, json: { items: (await listModels(c.deps.ds)).map(modelView) } };
  },
};

export const adminRoutes = [createClient, getClients, deleteClient, createUser, getUsers, deleteUser, getTokens, deleteToken, activateModel];
