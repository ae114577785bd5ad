import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';
import { DataTable } from '../data-table.js';

interface Client {
  id: string;
  role: string;
  description: string;
  aeTitle?: string | null;
  createdAt: string;
  revokedAt: string | null;
}
interface User {
  id: string;
  role: string;
  displayName: string;
  createdAt: string;
  disabledAt: string | null;
}
interface OperatorToken {
  id: string;
  subject: string;
  role: string;
  description: string;
  expiresAt: string;
  revokedAt: string | null;
}
interface ModelItem {
  kind: string;
  name: string;
  version: string;
  active: boolean;
}
interface ShadowRun {
  candidate: string;
  fraction: number;
  startedBy: string;
  startedAt: string;
}

const ROLES = ['workstation', 'clinician', 'auditor', 'admin'];

type Act = (what: () => Promise<string>) => Promise<void>;

/** A row's state cell: what ended the row (revoked, disabled, active), or the button that changes it. */
function StateCell(props: { ended: string | null; act: Act; run: () => Promise<string>; label: string; ariaLabel?: string }) {
  return (
    <td>
      {props.ended ?? (
        <button type="button" aria-label={props.ariaLabel} onClick={() => props.act(props.run)}>
          {props.label}
        </button>
      )}
    </td>
  );
}

export function AdminPage() {
  const [clients, setClients] = useState<Client[]>([]);
  const [users, setUsers] = useState<User[]>([]);
  const [models, setModels] = useState<ModelItem[]>([]);
  const [tokens, setTokens] = useState<OperatorToken[]>([]);
  const [message, setMessage] = useState<string | null>(null);
  const [newClient, setNewClient] = useState({ id: '', role: 'workstation', description: '', aeTitle: '' });
  const [newUser, setNewUser] = useState({ id: '', role: 'clinician', displayName: '' });
  const [shadow, setShadow] = useState<ShadowRun | null>(null);
  const [newShadow, setNewShadow] = useState({ name: 'classifier', version: '', fraction: '0.2' });

  const load = async () => {
    const [c, u, m, t, sh] = await Promise.all([
      api<{ items: Client[] }>('GET', '/v1/admin/clients'),
      api<{ items: User[] }>('GET', '/v1/admin/users'),
      api<{ items: ModelItem[] }>('GET', '/v1/models'),
      api<{ items: OperatorToken[] }>('GET', '/v1/admin/tokens?all=true'),
      api<{ running: ShadowRun | null }>('GET', '/v1/models/shadow'),
    ]);
    setClients(c.items);
    setUsers(u.items);
    setModels(m.items);
    setTokens(t.items);
    setShadow(sh.running);
  };
  useEffect(() => {
    load().catch((e) => setMessage(e instanceof ApiError ? e.message : String(e)));
  }, []);

  const act: Act = async (what) => {
    try {
      setMessage(await what());
      await load();
    } catch (e) {
      setMessage(e instanceof ApiError ? `Refused: ${e.message}` : String(e));
    }
  };

  return (
    <section class="admin">
      <h1>Administration</h1>
      {message && (
        <p role="status" class="status">
          {message}
        </p>
      )}
      <h2>Clients (machines)</h2>
      <DataTable caption="API clients" headers={['Id', 'Role', 'AE title', 'Description', 'State']}>
        {clients.map((c) => (
          <tr key={c.id}>
            <td>{c.id}</td>
            <td>{c.role}</td>
            <td>{c.aeTitle ?? '—'}</td>
            <td>{c.description}</td>
            <StateCell
              ended={c.revokedAt ? 'revoked' : null}
              act={act}
              label={`Revoke ${c.id}`}
              run={async () => {
                await api('DELETE', `/v1/admin/clients/${c.id}`);
                return `Client ${c.id} revoked.`;
              }}
            />
          </tr>
        ))}
      </DataTable>
      <form
        class="inline"
        aria-label="New client"
        onSubmit={(e) => {
          e.preventDefault();
          act(async () => {
            const body: Record<string, string> = { id: newClient.id, role: newClient.role, description: newClient.description };
            if (newClient.aeTitle) body.aeTitle = newClient.aeTitle;
            const r = await api<{ secret?: string; clientSecret?: string }>('POST', '/v1/admin/clients', body);
            return `Client ${newClient.id} created. Its secret, shown once: ${r.secret ?? r.clientSecret ?? '(see response)'}`;
          });
        }}
      >
        <label>
          Client id <input required value={newClient.id} onInput={(e) => setNewClient({ ...newClient, id: e.currentTarget.value })} />
        </label>
        <label>
          Client role{' '}
          <select value={newClient.role} onChange={(e) => setNewClient({ ...newClient, role: e.currentTarget.value })}>
            {ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <label>
          AE title <input size={16} value={newClient.aeTitle} onInput={(e) => setNewClient({ ...newClient, aeTitle: e.currentTarget.value })} />
        </label>
        <label>
          Description <input value={newClient.description} onInput={(e) => setNewClient({ ...newClient, description: e.currentTarget.value })} />
        </label>
        <button type="submit">Create client</button>
      </form>

      <h2>Users (people)</h2>
      <DataTable caption="Users" headers={['Id', 'Name', 'Role', 'State']}>
        {users.map((u) => (
          <tr key={u.id}>
            <td>{u.id}</td>
            <td>{u.displayName}</td>
            <td>{u.role}</td>
            <StateCell
              ended={u.disabledAt ? 'disabled' : null}
              act={act}
              label={`Disable ${u.id}`}
              run={async () => {
                await api('DELETE', `/v1/admin/users/${u.id}`);
                return `User ${u.id} disabled.`;
              }}
            />
          </tr>
        ))}
      </DataTable>
      <form
        class="inline"
        aria-label="New user"
        onSubmit={(e) => {
          e.preventDefault();
          act(async () => {
            const r = await api<{ password?: string }>('POST', '/v1/admin/users', newUser);
            return `User ${newUser.id} created. Their password, shown once: ${r.password ?? '(the one given)'}`;
          });
        }}
      >
        <label>
          User id <input required value={newUser.id} onInput={(e) => setNewUser({ ...newUser, id: e.currentTarget.value })} />
        </label>
        <label>
          Display name <input value={newUser.displayName} onInput={(e) => setNewUser({ ...newUser, displayName: e.currentTarget.value })} />
        </label>
        <label>
          User role{' '}
          <select value={newUser.role} onChange={(e) => setNewUser({ ...newUser, role: e.currentTarget.value })}>
            {ROLES.filter((r) => r !== 'workstation').map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <button type="submit">Create user</button>
      </form>

      <h2>Operator tokens</h2>
      <p>
        Minted with <code>cxr-triage token</code> (a PACS that can send only a static header gets a long-lived one); revoking one refuses it from its next
        request on.
      </p>
      <DataTable caption="Operator tokens" headers={['Id', 'Subject', 'Role', 'Description', 'Expires', 'State']}>
        {tokens.map((t) => (
          <tr key={t.id}>
            <td>
              <code>{t.id}</code>
            </td>
            <td>{t.subject}</td>
            <td>{t.role}</td>
            <td>{t.description}</td>
            <td>{t.expiresAt.slice(0, 10)}</td>
            <StateCell
              ended={t.revokedAt ? 'revoked' : Date.parse(t.expiresAt) <= Date.now() ? 'expired' : null}
              act={act}
              label="Revoke"
              ariaLabel={`Revoke token ${t.id} (${t.subject})`}
              run={async () => {
                await api('DELETE', `/v1/admin/tokens/${t.id}`);
                return `Token ${t.id} (${t.subject}) revoked.`;
              }}
            />
          </tr>
        ))}
      </DataTable>

      <h2>Models</h2>
      <DataTable caption="Model versions" headers={['Kind', 'Version', 'State']}>
        {models.map((m) => (
          <tr key={`${m.name}@${m.version}`}>
            <td>{m.kind}</td>
            <td>
              {m.name}@{m.version}
            </td>
            <StateCell
              ended={m.active ? 'active' : null}
              act={act}
              label={`Activate ${m.version}`}
              run={async () => {
                await api('POST', `/v1/admin/models/${m.name}/${m.version}/activate`);
                return `${m.name}@${m.version} is now active.`;
              }}
            />
          </tr>
        ))}
      </DataTable>

      <h2>Shadow run</h2>
      <p>
        A candidate version scores a sample of new studies as well as the active model; its results are kept apart (never on the worklist or sent anywhere) and
        compared on the auditor's page. One runs at a time: starting another replaces it.
      </p>
      {shadow ? (
        <p>
          <strong>{shadow.candidate}</strong> scores {Math.round(shadow.fraction * 1000) / 10}% of new studies (since{' '}
          {shadow.startedAt.slice(0, 16).replace('T', ' ')}, by {shadow.startedBy}).{' '}
          <button
            type="button"
            onClick={() =>
              act(async () => {
                const r = await api<{ stopped: ShadowRun | null }>('DELETE', '/v1/admin/models/shadow');
                return r.stopped ? `Shadow run of ${r.stopped.candidate} stopped.` : 'No shadow run was running.';
              })
            }
          >
            Stop shadow run
          </button>
        </p>
      ) : (
        <p>No candidate runs in shadow.</p>
      )}
      <form
        class="inline"
        aria-label="Start a shadow run"
        onSubmit={(e) => {
          e.preventDefault();
          act(async () => {
            const r = await api<{ running: ShadowRun }>(
              'POST',
              `/v1/admin/models/${encodeURIComponent(newShadow.name)}/${encodeURIComponent(newShadow.version)}/shadow`,
              { fraction: Number(newShadow.fraction) },
            );
            return `${r.running.candidate} now scores ${Math.round(r.running.fraction * 1000) / 10}% of new studies in shadow.`;
          });
        }}
      >
        <label>
          Candidate model{' '}
          <select value={newShadow.name} onChange={(e) => setNewShadow({ ...newShadow, name: e.currentTarget.value })}>
            <option>classifier</option>
            <option>segmenter</option>
          </select>
        </label>
        <label>
          Candidate version <input required value={newShadow.version} onInput={(e) => setNewShadow({ ...newShadow, version: e.currentTarget.value })} />
        </label>
        <label>
          Sample fraction{' '}
          <input
            type="number"
            required
            min="0.01"
            max="1"
            step="0.01"
            value={newShadow.fraction}
            onInput={(e) => setNewShadow({ ...newShadow, fraction: e.currentTarget.value })}
          />
        </label>
        <button type="submit">Start shadow run</button>
      </form>
    </section>
  );
}
