import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CxrError } from '../../errors.js';
import { readPerImageCsv } from '../../ml/evaluation-files.js';
import { comparePairedFilms, Z_95, type PairedComparison, type PairedRate } from '../../ml/paired-comparison.js';
import { action, parseNumber } from '../run.js';

interface CompareCliOptions {
  margin?: string;
  json?: boolean;
}

/** An evaluation folder (`evaluate --save` writes per-image.csv into it) or a per-image CSV. */
async function perImagePath(p: string): Promise<string> {
  const s = await stat(p).catch(() => null);
  if (!s) throw new CxrError('E_NOT_FOUND', `${p}: no such file or evaluation folder`);
  if (!s.isDirectory()) return p;
  const csv = join(p, 'per-image.csv');
  if (!(await stat(csv).catch(() => null))) throw new CxrError('E_NOT_FOUND', `${p} holds no per-image.csv (evaluate --save writes one)`);
  return csv;
}

const fixed = (v: number, digits = 3) => v.toFixed(digits);
const signed = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(3)}`;
const pValue = (p: number) => (p < 0.001 ? '<0.001' : p.toFixed(3));

function rateLine(name: string, r: PairedRate): string {
  const detail = `${r.rightA} vs ${r.rightB} of ${r.n} right, ${r.onlyA} / ${r.onlyB} right by one only`;
  return `${name.padEnd(13)}${fixed(r.rightA / r.n).padEnd(10)}${fixed(r.rightB / r.n).padEnd(11)}${signed(r.difference).padEnd(29)}${pValue(r.p).padEnd(8)}McNemar exact: ${detail}`;
}

function verdictLine(c: PairedComparison): string {
  const a = c.auc;
  if (!a || !c.verdict) return 'verdict: no AUC comparison (a class has fewer than two films)';
  const interval = `${signed(a.ci[0])} to ${signed(a.ci[1])}`;
  switch (c.verdict) {
    case 'better':
      return `verdict: the candidate ranks these films better (AUC difference ${interval}, p ${pValue(a.p)})`;
    case 'worse':
      return `verdict: the candidate ranks these films worse (AUC difference ${interval}, p ${pValue(a.p)})`;
    case 'non-inferior':
      return `verdict: non-inferior within ${c.margin}: the AUC difference's 95% interval (${interval}) stays above -${c.margin}`;
    default:
      return `verdict: inconclusive: these films cannot tell the two apart by AUC (95% interval ${interval})${c.margin !== undefined ? `; a loss of ${c.margin} is not ruled out` : ''}`;
  }
}

export function formatComparison(baseline: string, candidate: string, c: PairedComparison): string {
  const lines = [`baseline     ${baseline}`, `candidate    ${candidate}`];
  const a = c.auc;
  lines.push(`films        ${c.films}, paired by file${a ? ` (${a.positives} pneumonia, ${a.negatives} normal)` : ''}`, '');
  lines.push(`${''.padEnd(13)}${'baseline'.padEnd(10)}${'candidate'.padEnd(11)}${'difference (95% CI)'.padEnd(29)}${'p'.padEnd(8)}test`);
  if (a)
    lines.push(
      `${'AUC'.padEnd(13)}${fixed(a.aucA).padEnd(10)}${fixed(a.aucB).padEnd(11)}${`${signed(a.difference)} (${signed(a.ci[0])} to ${signed(a.ci[1])})`.padEnd(29)}${pValue(a.p).padEnd(8)}DeLong, paired`,
    );
  if (c.recall && c.specificity) lines.push(rateLine('recall', c.recall), rateLine('specificity', c.specificity));
  else lines.push("recall and specificity: not compared (a file has no decision column; evaluate's per-image CSVs have one)");
  lines.push('', verdictLine(c));
  // what these films can resolve at all: the interval's half-width
  if (a) lines.push(`resolution   an AUC difference smaller than about ${fixed(Z_95 * a.se)} either way cannot be told from chance on these films`);
  return `${lines.join('\n')}\n`;
}

export function register(program: Command): void {
  program
    .command('compare')
    .description(
      'compare two evaluations of the same films (a baseline and a candidate version): the AUC difference with its DeLong 95% interval and p-value, ' +
        "recall and specificity at each evaluation's own decisions with McNemar's exact test, and whether the films can tell the two apart",
    )
    .argument('<baseline>', 'an evaluation folder (evaluate --save) or a per-image CSV (evaluate --per-image)')
    .argument('<candidate>', 'the same, for the version compared with it: the same films with the same labels')
    .option('--margin <auc>', 'non-inferiority margin: the candidate is non-inferior when the lower end of the AUC interval is above -margin (e.g. 0.02)')
    .option('--json', 'print the comparison as one JSON object')
    .addHelpText(
      'after',
      '\nExample (a candidate against the served version on the adult validation films):\n' +
        '  cxr-triage compare models/classifier/<served>/evaluations/<time>-validation models/classifier/<candidate>/evaluations/<time>-validation --margin 0.02\n' +
        'Both must be evaluations of the same films (the same split and subset, one dataset each); films that differ are E_BAD_ARGUMENT.',
    )
    .action(
      action(async (baseline: string, candidate: string, o: CompareCliOptions) => {
        const margin = o.margin === undefined ? undefined : parseNumber('--margin', o.margin);
        const [a, b] = await Promise.all([perImagePath(baseline).then(readPerImageCsv), perImagePath(candidate).then(readPerImageCsv)]);
        const c = comparePairedFilms(a, b, margin);
        if (o.json) process.stdout.write(`${JSON.stringify({ baseline, candidate, ...c })}\n`);
        else process.stdout.write(formatComparison(baseline, candidate, c));
      }),
    );
}
