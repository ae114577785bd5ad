import { Command } from 'commander';
import { commandLoaders } from './commands/index.js';

const program = new Command();
program
  .name('cxr-triage')
  .description('Chest X-ray pneumonia triage: DICOM ingestion, lung segmentation, classification, audited API')
  .version('0.1.0')
  .showHelpAfterError()
  .enablePositionalOptions();

const first = process.argv.slice(2).find((a) => !a.startsWith('-'));
const names = first && first in commandLoaders ? [first] : Object.keys(commandLoaders);
for (const name of names) (await commandLoaders[name]()).register(program);

await program.parseAsync(process.argv);
