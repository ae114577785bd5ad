import type { Command } from 'commander';
import { CxrError, exitCodeFor, isCxrError } from '../errors.js';

/**
 * Wraps a subcommand's action: a CxrError becomes `error E_CODE: message` on stderr with
 * the code's exit status and no stack; anything else is a bug and keeps its stack.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      if (isCxrError(e)) {
        process.stderr.write(`error ${e.code}: ${e.message}\n`);
        process.exitCode = exitCodeFor(e.code);
        return;
      }
      process.stderr.write(`error E_INTERNAL: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    }
  };
}

export function parseNumber(name: string, value: string): number {
  // Number('') and Number('  ') are 0: an unset shell variable must not become a value
  const n = value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isFinite(n)) throw new CxrError('E_BAD_ARGUMENT', `${name} must be a number, got '${value}'`);
  return n;
}

export function parseInteger(name: string, value: string, min = -Infinity): number {
  const n = parseNumber(name, value);
  if (!Number.isInteger(n) || n < min) throw new CxrError('E_BAD_ARGUMENT', `${name} must be an integer >= ${min}, got '${value}'`);
  return n;
}

/** Commander collector for a repeatable option: every occurrence is kept, in order. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * The arguments the program was run with (after `cxr-triage`), for provenance records. Read
 * from the root command, which keeps what it parsed (commander's `rawArgs`, not in its types),
 * so a command run inside another process (runCli) records its own arguments, not that
 * process's argv.
 */
export function invocation(cmd: Command): string[] {
  let root = cmd;
  while (root.parent) root = root.parent;
  const raw = (root as Command & { rawArgs?: unknown }).rawArgs;
  return Array.isArray(raw) && raw.every((a) => typeof a === 'string') ? [...raw] : process.argv.slice(2);
}
