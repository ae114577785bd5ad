/**
 * Shadow candidates on the auditor's page: which candidate scores a sample of studies now, and
 * how each compares with the active model and with clinicians' reviews (GET /v1/models/shadow).
 * A table with a caption and scoped headers, so a screen reader reads each figure with its
 * candidate and column.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';
import { DataTable } from '../data-table.js';

interface Reviewed {
  sensitivity: number | null;
  specificity: number | null;
}

interface Comparison {
  candidate: string;
  setting: { fraction: number; running: boolean; startedAt: string; stoppedAt: string | null } | null;
  scored: number;
  compared: number;
  candidateVersions: { segmenter: string; classifier: string; n: number }[];
  decisionAgreement: number | null;
  meanAbsProbabilityDifference: number | null;
  flaggedRate: { candidate: number | null; active: number | null };
  reviewed: { n: number; candidate: Reviewed; active: Reviewed };
}

const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(1)}%`);
const pair = (candidate: number | null, active: number | null) => `${pct(candidate)} vs ${pct(active)}`;

export function ShadowSection() {
  const [items, setItems] = useState<Comparison[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api<{ items: Comparison[] }>('GET', '/v1/models/shadow').then(
      (r) => setItems(r.items),
      (e) => setError(e instanceof ApiError ? e.message : String(e)),
    );
  }, []);

  return (
    <section aria-labelledby="shadow-heading">
      <h2 id="shadow-heading">Shadow candidates</h2>
      <p class="hint">
        A candidate scores a sample of studies as well as the active model (<code>cxr-triage model shadow</code>); its results are never shown on the worklist
        or sent anywhere. Figures read "candidate vs active" on the same studies; sensitivity and specificity count reviewed studies whose review gives the
        truth.
      </p>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {items && items.length === 0 && <p>No candidate has run in shadow.</p>}
      {items && items.length > 0 && (
        <DataTable
          caption="Shadow candidates compared with the active model"
          headers={['Candidate', 'Sample', 'Scored', 'Decision agreement', 'Mean |Δp|', 'Flagged', 'Reviewed', 'Sensitivity', 'Specificity']}
          class="shadow"
        >
          {items.map((c) => (
            <tr key={c.candidate}>
              <th scope="row">
                {c.candidate}
                {c.candidateVersions.length > 0 && (
                  <span class="versions">
                    {' '}
                    (with {[...new Set(c.candidateVersions.map((v) => (c.candidate === v.classifier ? v.segmenter : v.classifier)))].join(', ')})
                  </span>
                )}
              </th>
              <td>{c.setting ? `${pct(c.setting.fraction)}${c.setting.running ? ', running' : ', stopped'}` : '—'}</td>
              <td>{c.scored}</td>
              <td>{pct(c.decisionAgreement)}</td>
              <td>{c.meanAbsProbabilityDifference === null ? '—' : c.meanAbsProbabilityDifference.toFixed(3)}</td>
              <td>{pair(c.flaggedRate.candidate, c.flaggedRate.active)}</td>
              <td>{c.reviewed.n}</td>
              <td>{pair(c.reviewed.candidate.sensitivity, c.reviewed.active.sensitivity)}</td>
              <td>{pair(c.reviewed.candidate.specificity, c.reviewed.active.specificity)}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}
