/**
 * The GPU scripts' command lines (node:util parseArgs, string options only), with the usage each
 * script keeps in its opening comment (bench/usage.ts): `--help` prints it; a missing or unknown
 * option prints what is wrong and the usage and exits 2, as the CLI's input errors do.
 */
import { parseArgs } from 'node:util';
import { helpFromHeader, usageFromHeader } from '../../bench/usage.js';

export interface ScriptOption {
  multiple?: boolean;
  default?: string;
}

export interface ScriptArgs {
  /** a single option's value (its default when not given) */
  one(name: string): string;
  /** a repeatable option's values */
  many(name: string): string[];
  /** whether an option without a default was given */
  has(name: string): boolean;
}

export function scriptArgs(moduleUrl: string, options: Record<string, ScriptOption>, required: readonly string[]): ScriptArgs {
  helpFromHeader(moduleUrl);
  const fail = (message: string): never => {
    process.stderr.write(`error E_BAD_ARGUMENT: ${message}\n${usageFromHeader(moduleUrl)}\n`);
    process.exit(2);
  };
  let values: Record<string, string | boolean | (string | boolean)[] | undefined> = {};
  try {
    const config = Object.fromEntries(
      Object.entries(options).map(([k, v]) => [
        k,
        { type: 'string' as const, ...(v.multiple ? { multiple: true } : {}), ...(v.default !== undefined ? { default: v.default } : {}) },
      ]),
    );
    values = parseArgs({ options: config, allowPositionals: false }).values;
  } catch (e) {
    fail((e as Error).message);
  }
  for (const name of required) if (values[name] === undefined) fail(`--${name} is required`);
  return {
    one: (name) => String(values[name]),
    many: (name) => ((values[name] as string[] | undefined) ?? []).map(String),
    has: (name) => values[name] !== undefined,
  };
}
