import { Command } from 'commander';
import { commands } from './commands/index.js';

const program = new Command();
program
  .name('cxr-triage')
  .description('Chest X-ray pneumonia triage: DICOM ingestion, lung segmentation, classification, audited API')
  .version('0.1.0')
  .showHelpAfterError()
  .enablePositionalOptions();

for (const register of commands) register(program);

await program.parseAsync(process.argv);
