import { Command, CommanderError } from 'commander';
import { commandLoaders } from './commands/index.js';

export interface RunCliOptions {
  /**
   * Return commander's own exits (--help, --version, a usage error) as exit codes instead of
   * ending the process: for running the CLI inside another program, e.g. a test.
   */
  inProcess?: boolean;
}

/** The `cxr-triage` program with the subcommands `argv` needs (all of them for help). */
async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command();
  program
    .name('cxr-triage')
    .description('Chest X-ray pneumonia triage: DICOM ingestion, lung segmentation, classification, audited API')
    .version('0.1.0')
    .showHelpAfterError()
    .enablePositionalOptions();
  // set before the subcommands are added, which inherit both: commander's own exits come back
  // as errors (mapped in runCli), and its usage errors read like every other input error
  program.exitOverride();
  program.configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'error E_BAD_ARGUMENT: ')) });
  const first = argv.find((a) => !a.startsWith('-'));
  const names = first && first in commandLoaders ? [first] : Object.keys(commandLoaders);
  for (const name of names) (await commandLoaders[name]()).register(program);
  return program;
}

/**
 * Runs `cxr-triage ARGV...` (arguments after the program name) and resolves with its exit
 * status once the command's action has finished. Actions report a CxrError as
 * `error E_CODE: message` on stderr and set process.exitCode (see run.ts); this reads and
 * clears it, so one process can run several commands. A long-running command (`serve`)
 * resolves when it has started.
 */
export async function runCli(argv: readonly string[], opts: RunCliOptions = {}): Promise<number> {
  const program = await buildProgram(argv);
  process.exitCode = undefined;
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    // --help and --version end with status 0; a usage error (unknown option or command, a
    // missing argument) is an input error, status 2 as for every E_BAD_ARGUMENT
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  const code = Number(process.exitCode ?? 0);
  if (opts.inProcess) process.exitCode = undefined;
  return code;
}
