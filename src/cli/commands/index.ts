import type { Command } from 'commander';

/** Each subcommand lives in its own module and adds itself to the program. */
export type RegisterCommand = (program: Command) => void;

/**
 * Top-level command name → lazy loader. Loading lazily keeps `cxr-triage inspect` from
 * paying for tfjs, onnxruntime and the database driver on every start; `--help` loads all.
 * To add a command: one line here, keyed by the word typed on the command line.
 */
export const commandLoaders: Record<string, () => Promise<{ register: RegisterCommand }>> = {
  inspect: () => import('./inspect.js'),
  render: () => import('./render.js'),
  serve: () => import('./serve.js'),
  worker: () => import('./worker.js'),
  token: () => import('./token.js'),
  client: () => import('./client.js'),
  user: () => import('./user.js'),
  'export-onnx': () => import('./export-onnx.js'),
  analyze: () => import('./analyze.js'),
  bench: () => import('./bench-latency.js'),
  synth: () => import('./synth.js'),
  train: () => import('./train.js'),
  evaluate: () => import('./evaluate.js'),
  robustness: () => import('./robustness.js'),
  calibrate: () => import('./calibrate.js'),
  'refit-head': () => import('./refit-head.js'),
  'fit-population': () => import('./fit-population.js'),
  'fit-population-head': () => import('./fit-population-head.js'),
  quantize: () => import('./quantize.js'),
  models: () => import('./models.js'),
  'validate-dataset': () => import('./validate-dataset.js'),
  runs: () => import('./runs.js'),
  'contact-sheet': () => import('./contact-sheet.js'),
  'pseudo-masks': () => import('./pseudo-masks.js'),
  'import-weights': () => import('./import-weights.js'),
  compare: () => import('./compare.js'),
};
