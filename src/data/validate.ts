/**
 * Validating a dataset folder before anything trains on it: every row of labels.csv is checked
 * and every image (and mask) decoded the way training reads it, and every problem is reported
 * by line, instead of the first one surfacing after an epoch.
 */
import type { WindowPolicy } from '../dicom/index.js';
import { isCxrError } from '../errors.js';
import { loadDataset, readSample, type Dataset, type DatasetItem, type RowProblem } from './dataset.js';

export interface DatasetReport {
  dir: string;
  /** data rows in labels.csv */
  rows: number;
  /** the usable items (every row without a problem) */
  items: DatasetItem[];
  /** unusable rows, in line order */
  problems: RowProblem[];
  /** accepted after normalising (labels) */
  warnings: string[];
}

export interface ValidateOptions {
  requireMasks?: boolean;
  window?: WindowPolicy;
  /** images decoded at once (default 2) */
  concurrency?: number;
  /** called after each decoded image (for a progress bar) */
  onImage?: (done: number, total: number) => void;
}

export async function validateDataset(dir: string, opts: ValidateOptions = {}): Promise<DatasetReport> {
  const problems: RowProblem[] = [];
  const ds: Dataset = await loadDataset(dir, { requireMasks: opts.requireMasks, onRowProblem: (p) => problems.push(p) });
  const rowProblems = problems.length;
  const bad = new Set<DatasetItem>();
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < ds.items.length) {
      const item = ds.items[next++];
      try {
        await readSample(item, { window: opts.window });
      } catch (e) {
        if (!isCxrError(e)) throw e;
        bad.add(item);
        const own = `labels.csv line ${item.row}: '${item.file}' `;
        problems.push({
          line: item.row,
          file: item.file,
          message: e.message.startsWith(own) ? e.message.slice(own.length) : e.message.replace(/^labels\.csv line \d+: /, ''),
        });
      }
      opts.onImage?.(++done, ds.items.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 2) }, worker));
  problems.sort((a, b) => a.line - b.line);
  return {
    dir: ds.dir,
    rows: ds.items.length + rowProblems,
    items: ds.items.filter((i) => !bad.has(i)),
    problems,
    warnings: ds.warnings,
  };
}

/** One line per problem: `labels.csv line 7: images/x.png: not a readable PNG image (...)`. */
export function formatProblems(r: DatasetReport, max = Infinity): string[] {
  const lines = r.problems.slice(0, max).map((p) => `labels.csv line ${p.line}: ${p.file ? `${p.file}: ` : ''}${p.message}`);
  if (r.problems.length > max) lines.push(`… and ${r.problems.length - max} more`);
  return lines;
}
