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
  synth: () => import('./synth.js'),
};
