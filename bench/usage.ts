/**
 * `--help` for the bench scripts: their usage lives in each file's opening comment, so
 * `-h`/`--help` prints that comment and exits before any work (or option parsing) starts.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** A script's opening comment, without its comment marks: its usage. */
export function usageFromHeader(moduleUrl: string): string {
  const source = readFileSync(fileURLToPath(moduleUrl), 'utf8');
  const m = /^\/\*\*([\s\S]*?)\*\//.exec(source);
  return (m ? m[1] : 'no usage text')
    .split('\n')
    .map((l) => l.replace(/^\s*\* ?/, ''))
    .join('\n')
    .trim();
}

export function helpFromHeader(moduleUrl: string, argv: readonly string[] = process.argv.slice(2)): void {
  if (!argv.includes('--help') && !argv.includes('-h')) return;
  process.stdout.write(`${usageFromHeader(moduleUrl)}\n`);
  process.exit(0);
}
