/**
 * Usage: npx tsx scripts/gpu/reference-outputs.ts --version DIR --crops DIR [--n 16] > reference.json
 * Prints the tfjs probabilities of the version's graph on the first n crops of an export-crops
 * folder, so finetune.py --check can show that its PyTorch rebuild of the graph computes the same.
 */
import { initBackend } from '../../src/ml/backend.js';
import { scriptArgs } from './cli-args.js';
import { referenceProbabilities } from './reference.js';

const o = scriptArgs(import.meta.url, { version: {}, crops: {}, n: { default: '16' } }, ['version', 'crops']);
await initBackend();
process.stdout.write(`${JSON.stringify(await referenceProbabilities(o.one('version'), o.one('crops'), Number(o.one('n'))))}\n`);
