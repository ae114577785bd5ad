import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { parseWindowPolicy, readWindowed } from '../../dicom/index.js';
import { CxrError } from '../../errors.js';
import sharp from 'sharp';
import { toGray8 } from '../../imaging/png.js';
import { action, parseNumber } from '../run.js';
import { readInputFile } from '../../dicom/read-file.js';

/**
 * An 8-bit grayscale PNG (colour type 0). sharp writes single-channel raw input as RGB unless
 * told the colour space, and a render must be one grey channel.
 */
export async function encodeGray8Png(img: { width: number; height: number; data: Float32Array }): Promise<Buffer> {
  return sharp(toGray8(img), { raw: { width: img.width, height: img.height, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}

interface RenderOptions {
  out: string;
  window?: string;
  center?: string;
  width?: string;
}

export function register(program: Command): void {
  program
    .command('render')
    .description('window a DICOM image and write it as an 8-bit grayscale PNG at native size')
    .argument('<file>', 'DICOM Part 10 file (single-frame grayscale)')
    .requiredOption('--out <png>', 'output PNG path')
    .option('--window <policy>', "auto (lung window for HU data, else the file's VOI, else min-max) | lung (W1500/L-600) | header | minmax")
    .option('--center <c>', 'explicit window centre (with --width; overrides --window)')
    .option('--width <w>', 'explicit window width, >= 1 (with --center)')
    .action(
      action(async (file: string, opts: RenderOptions) => {
        const center = opts.center === undefined ? undefined : parseNumber('--center', opts.center);
        const width = opts.width === undefined ? undefined : parseNumber('--width', opts.width);
        const policy = parseWindowPolicy(opts.window, center, width);
        const img = await readWindowed(await readInputFile(file), { window: policy });
        const png = await encodeGray8Png(img);
        try {
          await writeFile(opts.out, png);
        } catch (e) {
          throw new CxrError('E_BAD_ARGUMENT', `cannot write ${opts.out} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
        }
        const w = img.window;
        const cw = w.center === null ? '' : ` C${w.center}/W${w.width}`;
        process.stdout.write(`${opts.out}: ${img.width}x${img.height}, window ${w.source}${cw} (${w.reason})\n`);
      }),
    );
}
