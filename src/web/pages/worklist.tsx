import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, query } from '../api.js';
import { navigate } from '../nav.js';

export interface WorklistRow {
  studyId: string;
  status: 'scored' | 'failed';
  studyInstanceUid: string;
  accessionNumber?: string | null;
  studyDate?: string | null;
  receivedAt: string;
  probability: number | null;
  threshold?: number | null;
  modelVersion?: string | null;
  decision: 'positive' | 'negative' | null;
  flagged: boolean;
  flagReasons: string[];
  qcFlags: string[];
  errorCode: string | null;
  reviewCount: number;
  lastVerdict: 'agree' | 'disagree' | null;
}

interface Counts {
  flaggedUnreviewed: number;
  unreviewed: number;
  awaitingScore: number;
}

interface Filters {
  flagged: boolean;
  unreviewed: boolean;
  from: string;
  model: string;
}

export function waited(since: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(since)) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d`;
}

const QC_WORDS: Record<string, string> = {
  lung_area_low: 'little lung found',
  lung_area_high: 'lung area too large',
  mask_touches_border: 'lungs touch the edge',
  not_frontal_chest: 'not a frontal chest film',
  image_too_small: 'image too small',
};

export function qcWords(flags: string[]): string {
  return flags.map((f) => QC_WORDS[f] ?? f).join(', ');
}

export function WorklistPage() {
  const [rows, setRows] = useState<WorklistRow[]>([]);
  const [counts, setCounts] = useState<Counts | null>(null);
  const [filters, setFilters] = useState<Filters>({ flagged: false, unreviewed: false, from: '', model: '' });
  const [selected, setSelected] = useState(0);
  const [live, setLive] = useState<'connecting' | 'live' | 'offline'>('connecting');
  const [error, setError] = useState<string | null>(null);
  const [now, setNow] = useState(Date.now());
  const table = useRef<HTMLTableElement>(null);

  const load = useCallback(async () => {
    try {
      const q = query({
        flagged: filters.flagged ? true : undefined,
        reviewed: filters.unreviewed ? false : undefined,
        from: filters.from ? new Date(`${filters.from}T00:00:00`).toISOString() : undefined,
        model: filters.model || undefined,
        limit: 100,
      });
      const [page, c] = await Promise.all([api<{ items: WorklistRow[] }>('GET', `/v1/worklist${q}`), api<Counts>('GET', '/v1/worklist/counts')]);
      setRows(page.items);
      setCounts(c);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [filters]);

  useEffect(() => {
    load();
  }, [load]);

  // new results arrive as server-sent events; the list reloads (debounced) when one does
  useEffect(() => {
    const es = new EventSource('/v1/events');
    let timer: ReturnType<typeof setTimeout> | undefined;
    es.onopen = () => setLive('live');
    es.onerror = () => setLive('offline');
    es.addEventListener('study', () => {
      clearTimeout(timer);
      timer = setTimeout(load, 300);
    });
    return () => {
      clearTimeout(timer);
      es.close();
    };
  }, [load]);

  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(t);
  }, []);

  const open = (i: number) => {
    const r = rows[i];
    if (r) navigate(`/app/studies/${r.studyId}`);
  };

  useEffect(() => {
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  function onKey(e: KeyboardEvent): void {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    if (e.key === 'ArrowDown' || e.key === 'j') {
      setSelected((s) => Math.min(rows.length - 1, s + 1));
      e.preventDefault();
    } else if (e.key === 'ArrowUp' || e.key === 'k') {
      setSelected((s) => Math.max(0, s - 1));
      e.preventDefault();
    } else if (e.key === 'Enter') {
      open(selected);
      e.preventDefault();
    }
  }

  useEffect(() => {
    table.current?.querySelector<HTMLElement>(`tr[data-index="${selected}"]`)?.focus();
  }, [selected]);

  return (
    <section>
      <h1>Worklist</h1>
      <p class="counts" aria-live="polite">
        {counts ? (
          <>
            <strong>{counts.flaggedUnreviewed}</strong> flagged and unreviewed · {counts.unreviewed} unreviewed · {counts.awaitingScore} awaiting a score
          </>
        ) : (
          'Counting…'
        )}
        <span class={`live ${live}`}>{live === 'live' ? 'live updates on' : live === 'offline' ? 'live updates off (reconnecting)' : 'connecting…'}</span>
      </p>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        <label>
          <input type="checkbox" checked={filters.flagged} onChange={(e) => setFilters({ ...filters, flagged: e.currentTarget.checked })} /> Flagged only
        </label>
        <label>
          <input type="checkbox" checked={filters.unreviewed} onChange={(e) => setFilters({ ...filters, unreviewed: e.currentTarget.checked })} /> Unreviewed
          only
        </label>
        <label>
          Received since <input type="date" value={filters.from} onChange={(e) => setFilters({ ...filters, from: e.currentTarget.value })} />
        </label>
        <label>
          Model version <input type="text" size={18} value={filters.model} onChange={(e) => setFilters({ ...filters, model: e.currentTarget.value })} />
        </label>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <p class="hint">Keys: ↑/↓ (or k/j) move, Enter opens.</p>
      <table ref={table} class="worklist">
        <caption class="sr-only">Studies, flagged first, then by probability</caption>
        <thead>
          <tr>
            <th scope="col">Decision</th>
            <th scope="col">Accession</th>
            <th scope="col">Study date</th>
            <th scope="col">Waiting</th>
            <th scope="col">Probability / threshold</th>
            <th scope="col">QC</th>
            <th scope="col">Review</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr
              key={r.studyId}
              data-index={i}
              tabIndex={i === selected ? 0 : -1}
              class={`${r.flagged ? 'flagged' : ''} ${i === selected ? 'selected' : ''}`}
              onClick={() => open(i)}
              onFocus={() => setSelected(i)}
            >
              <td>
                <a
                  href={`/app/studies/${r.studyId}`}
                  onClick={(e) => {
                    e.preventDefault();
                    open(i);
                  }}
                >
                  {r.status === 'failed' ? `Could not score (${r.errorCode})` : r.flagged ? 'Flagged' : 'Not flagged'}
                </a>
              </td>
              <td>{r.accessionNumber || '—'}</td>
              <td>{r.studyDate || '—'}</td>
              <td>{waited(r.receivedAt, now)}</td>
              <td>
                {r.probability === null ? '—' : r.probability.toFixed(3)}
                {r.threshold != null && ` / ${r.threshold.toFixed(3)}`}
              </td>
              <td>{r.qcFlags.length ? qcWords(r.qcFlags) : 'ok'}</td>
              <td>{r.reviewCount === 0 ? 'unreviewed' : `${r.lastVerdict ?? ''} (${r.reviewCount})`}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length === 0 && !error && <p>No studies match.</p>}
    </section>
  );
}
