import type { Command } from 'commander';
import { readMetadata } from '../../dicom/index.js';
import { action } from '../run.js';
import { readInputFile } from '../../dicom/read-file.js';

export function register(program: Command): void {
  program
    .command('inspect')
    .description('print the metadata of a DICOM file as JSON (no pixel decoding)')
    .argument('<file>', 'DICOM Part 10 file')
    .action(
      action(async (file: string) => {
        const meta = readMetadata(await readInputFile(file));
        process.stdout.write(`${JSON.stringify(meta, null, 2)}\n`);
      }),
    );
}
