import { useState } from 'preact/hooks';
import { api, ApiError, type SessionInfo } from '../api.js';

export function LoginPage(props: { notice: string | null; onSignedIn: (s: SessionInfo) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      props.onSignedIn(await api<SessionInfo>('POST', '/v1/auth/session', { username, password }));
    } catch (err) {
      setError(err instanceof ApiError ? err.message : 'sign-in failed');
      setPassword('');
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <h1>cxr-triage</h1>
      <p class="tagline">Chest X-ray pneumonia triage. Not for clinical use.</p>
      {props.notice && (
        <p class="notice" role="status">
          {props.notice}
        </p>
      )}
      <form onSubmit={submit}>
        <label for="username">Username</label>
        <input id="username" name="username" autocomplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        <label for="password">Password</label>
        <input
          id="password"
          name="password"
          type="password"
          autocomplete="current-password"
          required
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
