/**
 * The clinician's and auditor's web app: one bundle, routed on the path under /app/. Every page
 * reads the same /v1 JSON API as machines do; the session cookie authenticates it.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { navigate, usePath } from './nav.js';
import { api, ApiError, setCsrf, whenSignedOut, type SessionInfo } from './api.js';
import { AdminPage } from './pages/admin.js';
import { AuditPage } from './pages/audit.js';
import { LoginPage } from './pages/login.js';
import { ViewerPage } from './pages/viewer.js';
import { WorklistPage } from './pages/worklist.js';
import './styles.css';

export type Role = SessionInfo['user']['role'];

const HOME: Record<Role, string> = { clinician: '/app/worklist', auditor: '/app/audit', admin: '/app/admin' };

const PAGES: { prefix: string; roles: Role[]; title: string; nav?: string }[] = [
  { prefix: '/app/worklist', roles: ['clinician'], title: 'Worklist', nav: 'Worklist' },
  { prefix: '/app/studies/', roles: ['clinician'], title: 'Study' },
  { prefix: '/app/audit', roles: ['auditor'], title: 'Audit', nav: 'Audit' },
  { prefix: '/app/admin', roles: ['admin'], title: 'Administration', nav: 'Admin' },
];

function App() {
  const path = usePath();
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    whenSignedOut((why) => {
      setCsrf(null);
      setSession(null);
      setNotice(why);
      navigate('/app/login');
    });
    api<SessionInfo>('GET', '/v1/auth/session')
      .then((s) => {
        setCsrf(s.csrfToken);
        setSession(s);
      })
      .catch(() => setSession(null));
  }, []);

  useEffect(() => {
    const page = PAGES.find((p) => path.startsWith(p.prefix));
    document.title = `${page?.title ?? 'Sign in'} · cxr-triage`;
  }, [path]);

  if (session === undefined) return <p class="loading">Loading…</p>;
  if (session === null || path === '/app/login') {
    return (
      <LoginPage
        notice={notice}
        onSignedIn={(s) => {
          setCsrf(s.csrfToken);
          setSession(s);
          setNotice(null);
          navigate(HOME[s.user.role]);
        }}
      />
    );
  }
  const role = session.user.role;
  const page = PAGES.find((p) => path.startsWith(p.prefix));
  if (!page) {
    queueMicrotask(() => navigate(HOME[role]));
    return null;
  }
  const signOut = async () => {
    try {
      await api('DELETE', '/v1/auth/session');
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
    setCsrf(null);
    setSession(null);
    setNotice('You are signed out.');
    navigate('/app/login');
  };
  return (
    <div class="shell">
      <header class="top">
        <span class="brand">cxr-triage</span>
        <nav aria-label="Main">
          {PAGES.filter((p) => p.nav && p.roles.includes(role)).map((p) => (
            <a
              key={p.prefix}
              href={p.prefix}
              aria-current={path.startsWith(p.prefix) ? 'page' : undefined}
              onClick={(e) => {
                e.preventDefault();
                navigate(p.prefix);
              }}
            >
              {p.nav}
            </a>
          ))}
        </nav>
        <span class="who">
          {session.user.displayName || session.user.id} ({role})
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="content">
        {!page.roles.includes(role) ? (
          <section class="denied">
            <h1>Not allowed</h1>
            <p>
              The {page.title.toLowerCase()} pages are for {page.roles.join(' and ')} accounts; you are signed in as {role}.
            </p>
          </section>
        ) : page.prefix === '/app/worklist' ? (
          <WorklistPage />
        ) : page.prefix === '/app/studies/' ? (
          <ViewerPage studyId={path.slice(page.prefix.length)} />
        ) : page.prefix === '/app/audit' ? (
          <AuditPage />
        ) : (
          <AdminPage />
        )}
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
