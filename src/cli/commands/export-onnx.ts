import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { CxrError } from '../../errors.js';
import { initBackend } from '../../ml/backend.js';
import { MANIFEST_FILE } from '../../ml/model-store/index.js';
import { exportNewRevision } from '../../ml/onnx/model-version.js';
import { action } from '../run.js';

interface ExportOptions {
  model: string;
  version?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('export-onnx')
    .description(
      "convert a model version's tfjs artifacts to model.onnx (classifier: probability, features and cam outputs) and check it against tfjs. " +
        'Versions are immutable: the result is a new version <version>-rN beside the source (derivedFrom reason export-onnx) with the ' +
        'source files, the new model.onnx and a fresh manifest; the source is left as it was. Serve it with `cxr-triage models activate`.',
    )
    .requiredOption('--model <dir>', 'model version folder, e.g. models/classifier/v20250101-120000')
    .option('--version <name>', 'name of the new version (default: the next -rN revision of the source)')
    .option('--json', 'print the new version folder, its derivation and the ONNX description as JSON')
    .action(
      action(async (opts: ExportOptions) => {
        if (!existsSync(opts.model)) throw new CxrError('E_NOT_FOUND', `no model folder ${opts.model}`);
        if (!existsSync(join(opts.model, MANIFEST_FILE)))
          throw new CxrError('E_MODEL_MISSING', `${opts.model} is not a model version folder (no ${MANIFEST_FILE})`);
        const log = (line: string) => process.stderr.write(`${line}\n`);
        await initBackend({ log });
        const r = await exportNewRevision(opts.model, { version: opts.version, log });
        const sha256 = r.manifest.files['model.onnx'];
        process.stderr.write(
          `wrote ${r.kind} ${r.manifest.version}, derived from ${basename(r.source)} (left unchanged); ` +
            `serve it with \`cxr-triage models activate ${r.kind} ${r.manifest.version}\`\n`,
        );
        if (opts.json) {
          process.stdout.write(
            `${JSON.stringify({ dir: r.dir, kind: r.kind, version: r.manifest.version, derivedFrom: r.manifest.derivedFrom, sha256, onnx: r.info })}\n`,
          );
          return;
        }
        const io = (xs: { name: string; shape: (number | string)[] }[]) => xs.map((x) => `${x.name}[${x.shape.join(',')}]`).join(' ');
        process.stdout.write(
          `${r.dir}/model.onnx: ${r.kind}, opset ${r.info.opset}, ${r.info.nodes} nodes, ` +
            `inputs ${io(r.info.inputs)} -> outputs ${io(r.info.outputs)}, ` +
            `max |tfjs - onnx| ${r.info.parityMaxAbsDiff.toExponential(2)}, sha256 ${sha256}\n`,
        );
      }),
    );
}
