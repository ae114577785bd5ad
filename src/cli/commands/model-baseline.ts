/** `cxr-triage model baseline`: a site's own drift reference for a classifier version (see src/service/drift-baseline.ts). */
import type { Command } from 'commander';
import { CxrError } from '../../errors.js';
import type { StoredBaseline } from '../../db/drift-baselines.js';
import { clearDriftBaseline, DEFAULT_BASELINE_DAYS, DEFAULT_BASELINE_MIN, setDriftBaseline, showDriftBaseline } from '../../service/drift-baseline.js';
import { auditOperator, operator, withDatabase } from '../operator.js';
import { action, parseInteger } from '../run.js';

interface BaselineOptions {
  from?: string;
  to?: string;
  days: string;
  min: string;
  show?: boolean;
  clear?: boolean;
  json?: boolean;
}

/** NAME@VERSION, or a bare version of the classifier. */
function parseRef(ref: string): { name: string; version: string } {
  const at = ref.indexOf('@');
  const [name, version] = at < 0 ? ['classifier', ref] : [ref.slice(0, at), ref.slice(at + 1)];
  if (!name || !version) throw new CxrError('E_BAD_ARGUMENT', `expected NAME@VERSION or a classifier version, got '${ref}'`);
  return { name, version };
}

/**
 * An ISO 8601 date or date-time, read as UTC unless it gives an offset (a date alone is its UTC
 * midnight): the same window whatever the machine's time zone. Impossible dates (2026-02-30),
 * which Date would roll into the next month, are refused.
 */
export function parseWhen(option: string, value: string): Date {
  const v = value.trim();
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(v);
  const refuse = () =>
    new CxrError('E_BAD_ARGUMENT', `${option} must be an ISO 8601 date or date-time such as 2026-11-01 or 2026-11-01T08:00Z, got '${value}'`);
  if (!m) throw refuse();
  const [y, mo, d, h = '0', mi = '0', sec = '0'] = m.slice(1, 7);
  const daysInMonth = new Date(Date.UTC(Number(y), Number(mo), 0)).getUTCDate();
  if (Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(d) > daysInMonth || Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) throw refuse();
  const iso = m[4] === undefined ? `${y}-${mo}-${d}T00:00:00Z` : m[8] === undefined ? `${v.replace(' ', 'T')}Z` : v.replace(' ', 'T');
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) throw refuse();
  return when;
}

function describe(ref: string, b: StoredBaseline): string {
  const share = (k: number) => `${((100 * k) / b.n).toFixed(1)}%`;
  return (
    `${ref}: baseline of ${b.n} predictions from ${b.from.toISOString()} to ${b.to.toISOString()}, ${b.positive} positive (${share(b.positive)}); ` +
    `set by ${b.setBy} at ${b.setAt.toISOString()}\n` +
    `  probability bins 0.0-0.1 … 0.9-1.0: ${b.probabilityHistogram.join(' ')}\n` +
    `  lung area bins 0-0.06 … 0.54-0.6+: ${b.lungAreaHistogram.join(' ')}\n`
  );
}

export function registerBaseline(models: Command): void {
  models
    .command('baseline')
    .description(
      "set this site's own drift reference for a classifier version: its predictions over a window you reviewed. /metrics then measures " +
        "drift (cxr_drift_psi) and the expected positive rate against it instead of the version's validation split; audited (model.baseline.set / .clear)",
    )
    .argument('<version>', 'NAME@VERSION or a classifier version, as registered by the service')
    .option('--from <when>', `start of the window, ISO 8601 (default: --days before --to)`)
    .option('--to <when>', 'end of the window, ISO 8601, exclusive (default: now)')
    .option('--days <n>', 'length of the window when --from is not given', String(DEFAULT_BASELINE_DAYS))
    .option('--min <n>', 'fewest predictions a baseline may hold', String(DEFAULT_BASELINE_MIN))
    .option('--show', 'print the baseline in use and change nothing')
    .option('--clear', 'remove the baseline: drift is measured against validation again')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      "\nValidation's histograms describe the training hospitals' mix (the shipped version's validation split is about 70% pneumonia,\n" +
        'mostly children); at a site whose mix differs, drift against them is large without anything being wrong. Pick a window\n' +
        'after go-live whose flagged studies clinicians reviewed and found as expected, and set it here. Uses DATABASE_URL, else the\n' +
        'embedded PostgreSQL of CXR_DATA_DIR. Every process reads it at its next scrape.',
    )
    .action(
      action(async (ref: string, o: BaselineOptions) => {
        const { name, version } = parseRef(ref);
        const label = `${name}@${version}`;
        if (o.show && o.clear) throw new CxrError('E_BAD_ARGUMENT', '--show and --clear exclude each other');
        if (o.show) {
          const b = await withDatabase(({ ds }) => showDriftBaseline(ds, name, version));
          if (o.json) process.stdout.write(`${JSON.stringify(b)}\n`);
          else process.stdout.write(b ? describe(label, b) : `${label}: no baseline; drift is measured against its validation split\n`);
          return;
        }
        if (o.clear) {
          const removed = await withDatabase(({ ds }) =>
            clearDriftBaseline({ ds, name, version, by: operator(), audit: (m, detail) => auditOperator(m, 'model.baseline.clear', detail) }),
          );
          if (o.json) process.stdout.write(`${JSON.stringify({ removed })}\n`);
          else
            process.stdout.write(
              removed ? `${label}: baseline removed; drift is measured against its validation split again\n` : `${label}: had no baseline\n`,
            );
          return;
        }
        const days = parseInteger('--days', o.days, 1);
        const min = parseInteger('--min', o.min, 1);
        const to = o.to ? parseWhen('--to', o.to) : new Date();
        const from = o.from ? parseWhen('--from', o.from) : new Date(to.getTime() - days * 86_400_000);
        const r = await withDatabase(({ ds }) =>
          setDriftBaseline({
            ds,
            name,
            version,
            from,
            to,
            minStudies: min,
            by: operator(),
            audit: (m, detail) => auditOperator(m, 'model.baseline.set', detail),
          }),
        );
        if (o.json) {
          process.stdout.write(`${JSON.stringify(r)}\n`);
          return;
        }
        process.stdout.write(describe(label, r.baseline));
        process.stderr.write(`${r.previous ? 'replaced the previous baseline; ' : ''}/metrics measures drift against it from the next scrape\n`);
      }),
    );
}
