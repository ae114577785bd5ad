/**
 * `train --config FILE`: the training options as a YAML or JSON file, with the same keys as the
 * flags (`epochs: 3`, `target-recall: 0.9` or `targetRecall: 0.9`, `augment: false`). A flag
 * given on the command line wins over the file; the file is copied into the run folder.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { CxrError } from '../errors.js';

export interface LoadedConfig {
  /** option values by commander's attribute name (camelCase) */
  values: Record<string, string | boolean>;
  /** the file as written, for the run folder */
  text: string;
}

const camel = (k: string) => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Reads FILE and checks every key against `cmd`'s options (refusing unknown ones and `config` itself). */
export async function loadTrainConfig(path: string, cmd: Command): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new CxrError('E_BAD_ARGUMENT', `--config: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new CxrError('E_BAD_ARGUMENT', `--config: ${path} is not valid YAML or JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw))
    throw new CxrError('E_BAD_ARGUMENT', `--config: ${path} must hold a mapping of option names to values`);
  const known = new Map(cmd.options.map((opt) => [opt.attributeName(), opt]));
  const values: Record<string, string | boolean> = {};
  for (const [key, v] of Object.entries(raw as Record<string, unknown>)) {
    const name = camel(key);
    const opt = known.get(name);
    if (!opt || name === 'config' || name === 'help') {
      throw new CxrError('E_BAD_ARGUMENT', `--config: unknown option '${key}' in ${path} (use the flag names of \`cxr-triage train --help\`)`);
    }
    if (typeof v === 'boolean') {
      if (!opt.isBoolean() && !opt.negate && !opt.optional) throw new CxrError('E_BAD_ARGUMENT', `--config: '${key}' takes a value, not ${v}`);
      values[name] = v;
    } else if (typeof v === 'number' || typeof v === 'string') {
      values[name] = String(v);
    } else if (Array.isArray(v) && v.every((x) => typeof x === 'number' || typeof x === 'string')) {
      // e.g. blocks: [6, 12, 24, 16]
      values[name] = v.join(',');
    } else {
      throw new CxrError('E_BAD_ARGUMENT', `--config: '${key}' must be a number, a string, a boolean or a list`);
    }
  }
  return { values, text };
}

/** Puts the file's values under the options the command line did not set. */
export function applyConfig<T extends object>(o: T, cfg: LoadedConfig, cmd: Command): T {
  const out = { ...o } as Record<string, unknown>;
  for (const [name, v] of Object.entries(cfg.values)) {
    if (cmd.getOptionValueSource(name) !== 'cli') out[name] = v;
  }
  return out as T;
}
