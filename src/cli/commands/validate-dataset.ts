import type { Command } from 'commander';
import { parseWindowPolicy } from '../../dicom/index.js';
import { formatProblems, validateDataset } from '../../data/validate.js';
import { CxrError } from '../../errors.js';
import { ProgressBar } from '../../ml/train/progress.js';
import { action } from '../run.js';

interface ValidateCliOptions {
  masks?: boolean;
  window?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('validate-dataset')
    .description(
      'check a dataset folder the way train reads it: every labels.csv row, every image and mask decoded; problems are listed by line (exit 2 when there are any)',
    )
    .argument('<dir>', 'dataset folder: images/, labels.csv, optional masks/')
    .option('--masks', 'every image must have a lung mask (what segmenter training needs)')
    .option('--window <policy>', 'DICOM window policy: auto|lung|header|minmax (default auto)')
    .option('--json', 'print {rows, usable, problems:[{line,file,message}], warnings} instead of lines')
    .action(
      action(async (dir: string, o: ValidateCliOptions) => {
        const window = parseWindowPolicy(o.window);
        let bar: ProgressBar | null = null;
        const report = await validateDataset(dir, {
          requireMasks: o.masks,
          window,
          onImage: (done, total) => {
            bar ??= new ProgressBar(process.stderr, 'decoding', total);
            bar.tick(1);
            if (done === total) bar.finish();
          },
        });
        for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
        if (o.json) {
          process.stdout.write(
            `${JSON.stringify({ dir: report.dir, rows: report.rows, usable: report.items.length, problems: report.problems, warnings: report.warnings })}\n`,
          );
        } else {
          for (const line of formatProblems(report)) process.stdout.write(`${line}\n`);
          process.stdout.write(`${report.rows} rows, ${report.items.length} usable, ${report.problems.length} with problems\n`);
        }
        if (report.problems.length > 0) {
          throw new CxrError('E_BAD_DATASET', `${report.problems.length} of ${report.rows} rows of ${report.dir}/labels.csv cannot be used (listed above)`);
        }
      }),
    );
}
