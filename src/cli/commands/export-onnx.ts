import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { CxrError } from '../../errors.js';
import { initBackend } from '../../ml/backend.js';
import { exportModelVersion } from '../../ml/onnx/model-version.js';
import { action } from '../run.js';

interface ExportOptions {
  model: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('export-onnx')
    .description(
      "convert a model version folder's tfjs artifacts to model.onnx (classifier: probability, features and cam outputs), " +
        'check it against tfjs, and refresh the manifest (ONNX description and sha256 of every file)',
    )
    .requiredOption('--model <dir>', 'model version folder, e.g. models/classifier/v20250101-120000')
    .option('--json', 'print the ONNX description written to the manifest as JSON')
    .action(
      action(async (opts: ExportOptions) => {
        if (!existsSync(opts.model)) throw new CxrError('E_NOT_FOUND', `no model folder ${opts.model}`);
        const log = (line: string) => process.stderr.write(`${line}\n`);
        await initBackend({ log });
        const r = await exportModelVersion(opts.model, log);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ dir: r.dir, kind: r.kind, sha256: r.manifest.files['model.onnx'], onnx: r.info })}\n`);
          return;
        }
        const io = (xs: { name: string; shape: (number | string)[] }[]) => xs.map((x) => `${x.name}[${x.shape.join(',')}]`).join(' ');
        process.stdout.write(
          `${r.dir}/model.onnx: ${r.kind}, opset ${r.info.opset}, ${r.info.nodes} nodes, ` +
            `inputs ${io(r.info.inputs)} -> outputs ${io(r.info.outputs)}, ` +
            `max |tfjs - onnx| ${r.info.parityMaxAbsDiff.toExponential(2)}, sha256 ${r.manifest.files['model.onnx']}\n`,
        );
      }),
    );
}
