import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, query } from '../api.js';
import { BarChart, LineChart } from '../charts.js';
import { ShadowSection } from './shadow.js';
import { DataTable } from '../data-table.js';

interface PredictionRow {
  predictionId: string;
  studyId: string;
  predictedAt: string;
  classifier: string;
  probability: number;
  threshold: number;
  decision: string;
  flagged: boolean;
  qcFlags: string[];
  reviewCount: number;
  lastVerdict: string | null;
}

interface AuditRow {
  seq: string;
  at: string;
  actor: string;
  role: string | null;
  action: string;
  studyId: string | null;
  outcome: string;
}

interface Verification {
  ok: boolean;
  checked: number;
  firstBroken: { seq: string; reason?: string } | null;
  headHash?: string | null;
}

interface ModelItem {
  kind: string;
  name: string;
  version: string;
  active: boolean;
  activatedAt: string | null;
  manifest: Record<string, unknown>;
}

interface DailyRow {
  day: string;
  modelVersion: string;
  studies: number;
  flagged: number;
  reviewed: number;
  agreed: number;
}

interface Histogram {
  modelVersion: string;
  bins: number[];
  counts: number[];
}

const EMPTY = { from: '', to: '', model: '', decision: '', flagged: '', reviewed: '', agreement: '' };

function isoDay(d: string, end = false): string | undefined {
  if (!d) return undefined;
  return new Date(new Date(`${d}T00:00:00`).getTime() + (end ? 86_400_000 : 0)).toISOString();
}

export function AuditPage() {
  const [f, setF] = useState(EMPTY);
  const [applied, setApplied] = useState(EMPTY);
  const [rows, setRows] = useState<PredictionRow[]>([]);
  const [audit, setAudit] = useState<AuditRow[]>([]);
  const [verification, setVerification] = useState<Verification | null>(null);
  const [verifying, setVerifying] = useState(false);
  const [models, setModels] = useState<ModelItem[]>([]);
  const [daily, setDaily] = useState<DailyRow[]>([]);
  const [hist, setHist] = useState<Histogram[]>([]);
  const [error, setError] = useState<string | null>(null);

  const filterQuery = (x: typeof EMPTY, extra: Record<string, number> = {}) =>
    query({
      ...extra,
      from: isoDay(x.from),
      to: isoDay(x.to, true),
      model: x.model,
      decision: x.decision,
      flagged: x.flagged,
      reviewed: x.reviewed,
      agreement: x.agreement,
    });

  useEffect(() => {
    api<{ items: PredictionRow[] }>('GET', `/v1/predictions${filterQuery(applied, { limit: 100 })}`)
      .then((p) => setRows(p.items))
      .catch((e) => setError(e instanceof ApiError ? e.message : String(e)));
  }, [applied]);

  useEffect(() => {
    api<{ items: AuditRow[] }>('GET', '/v1/audit?limit=1000').then(
      (a) => setAudit(a.items.slice(-50).reverse()),
      () => {},
    );
    api<{ items: ModelItem[] }>('GET', '/v1/models').then(
      (m) => setModels(m.items),
      () => {},
    );
    api<{ items: DailyRow[] }>('GET', '/v1/stats/daily?days=30').then(
      (d) => setDaily(d.items),
      () => {},
    );
    api<{ items: Histogram[] }>('GET', '/v1/stats/probabilities').then(
      (h) => setHist(h.items),
      () => {},
    );
  }, []);

  const verify = async () => {
    setVerifying(true);
    try {
      setVerification(await api<Verification>('GET', '/v1/audit/verify'));
    } finally {
      setVerifying(false);
    }
  };

  const days = [...new Set(daily.map((d) => d.day))].sort();
  const versions = [...new Set(daily.map((d) => d.modelVersion))];
  const series = (pick: (d: DailyRow) => number | null) =>
    versions.map((v) => ({
      name: v,
      values: days.map((day) => {
        const d = daily.find((x) => x.day === day && x.modelVersion === v);
        return d ? pick(d) : null;
      }),
    }));

  return (
    <section class="audit">
      <h1>Audit</h1>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <h2>Prediction history</h2>
      <form
        class="filters"
        aria-label="History filters"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(f);
        }}
      >
        <label>
          From <input type="date" value={f.from} onChange={(e) => setF({ ...f, from: e.currentTarget.value })} />
        </label>
        <label>
          To <input type="date" value={f.to} onChange={(e) => setF({ ...f, to: e.currentTarget.value })} />
        </label>
        <label>
          Model <input type="text" size={16} value={f.model} onChange={(e) => setF({ ...f, model: e.currentTarget.value })} />
        </label>
        <label>
          Decision{' '}
          <select value={f.decision} onChange={(e) => setF({ ...f, decision: e.currentTarget.value })}>
            <option value="">any</option>
            <option value="positive">positive</option>
            <option value="negative">negative</option>
          </select>
        </label>
        <label>
          Flagged{' '}
          <select value={f.flagged} onChange={(e) => setF({ ...f, flagged: e.currentTarget.value })}>
            <option value="">any</option>
            <option value="true">flagged</option>
            <option value="false">not flagged</option>
          </select>
        </label>
        <label>
          Latest review{' '}
          <select value={f.agreement} onChange={(e) => setF({ ...f, agreement: e.currentTarget.value })}>
            <option value="">any</option>
            <option value="agree">agreed</option>
            <option value="disagree">disagreed</option>
          </select>
        </label>
        <button type="submit">Apply filters</button>
        <a class="button" href={`/v1/predictions.csv${filterQuery(applied)}`} download="predictions.csv">
          Download CSV
        </a>
      </form>
      <DataTable caption="Predictions, newest first" headers={['Predicted', 'Study', 'Model', 'Probability', 'Decision', 'Review']} class="history">
        {rows.map((r) => (
          <tr key={r.predictionId}>
            <td>{new Date(r.predictedAt).toLocaleString()}</td>
            <td>{r.studyId.slice(0, 8)}</td>
            <td>{r.classifier}</td>
            <td>
              {r.probability.toFixed(3)} / {r.threshold.toFixed(3)}
            </td>
            <td>
              {r.decision}
              {r.flagged ? ', flagged' : ''}
            </td>
            <td>{r.reviewCount ? r.lastVerdict : 'unreviewed'}</td>
          </tr>
        ))}
      </DataTable>
      <p>{rows.length} predictions shown (newest 100).</p>

      <h2>Audit log</h2>
      <p>
        <button type="button" onClick={verify} disabled={verifying}>
          Verify chain
        </button>{' '}
        {verification && (
          <strong role="status" class={verification.ok ? 'ok' : 'error'}>
            {verification.ok
              ? `Chain intact: all ${verification.checked} rows verified.`
              : `Chain BROKEN at row ${verification.firstBroken?.seq}: the log was altered after it was written.`}
          </strong>
        )}
      </p>
      <DataTable caption="The 50 newest audit rows" headers={['#', 'At', 'Actor', 'Action', 'Outcome']} class="auditlog">
        {audit.map((a) => (
          <tr key={a.seq}>
            <td>{a.seq}</td>
            <td>{new Date(a.at).toLocaleString()}</td>
            <td>
              {a.actor} {a.role ? `(${a.role})` : ''}
            </td>
            <td>{a.action}</td>
            <td>{a.outcome}</td>
          </tr>
        ))}
      </DataTable>

      <h2>Model versions</h2>
      <DataTable caption="Registered model versions" headers={['Kind', 'Version', 'Active', 'Threshold', 'Stored metrics']} class="models">
        {models.map((m) => {
          const t = m.manifest.threshold as { value?: number; targetRecall?: number } | undefined;
          const metrics = m.manifest.metrics as Record<string, unknown> | undefined;
          return (
            <tr key={`${m.name}@${m.version}`}>
              <td>{m.kind}</td>
              <td>
                {m.name}@{m.version}
              </td>
              <td>{m.active ? 'active' : ''}</td>
              <td>{t?.value !== undefined ? `${t.value.toFixed(3)} for recall ${t.targetRecall}` : '—'}</td>
              <td class="metrics">{metrics ? summarize(metrics) : '—'}</td>
            </tr>
          );
        })}
      </DataTable>

      <ShadowSection />

      <h2>Charts (last 30 days)</h2>
      <div class="charts">
        <BarChart title="Daily volume" labels={days} series={series((d) => d.studies)} />
        <LineChart title="Flag rate" labels={days} series={series((d) => (d.studies ? d.flagged / d.studies : null))} percent />
        <LineChart title="Agreement rate of reviews" labels={days} series={series((d) => (d.reviewed ? d.agreed / d.reviewed : null))} percent />
        {hist.map((h) => (
          <BarChart
            key={h.modelVersion}
            title={`Probability distribution, ${h.modelVersion}`}
            labels={h.bins.slice(0, -1).map((b, i) => `${b.toFixed(1)}–${h.bins[i + 1].toFixed(1)}`)}
            series={[{ name: h.modelVersion, values: h.counts }]}
          />
        ))}
      </div>
    </section>
  );
}

function summarize(m: Record<string, unknown>): string {
  const parts: string[] = [];
  const walk = (o: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(o)) {
      if (parts.length >= 6) return;
      if (typeof v === 'number') parts.push(`${prefix}${k} ${Number.isInteger(v) ? v : v.toFixed(3)}`);
      else if (v && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>, `${prefix}${k}.`);
    }
  };
  walk(m, '');
  return parts.join(', ');
}
