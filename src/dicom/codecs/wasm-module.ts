/**
 * The emscripten codec packages export async factories. Each module is instantiated once and
 * cached; a module that threw during a decode is dropped, because a trapped wasm instance may
 * hold corrupted state, and the next decode gets a fresh one.
 */
import { createRequire } from 'node:module';
import { CxrError } from '../../errors.js';

const require = createRequire(import.meta.url);

export interface EmscriptenDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned?: boolean };
  delete(): void;
}

type Factory = (options: { print: (s: string) => void; printErr: (s: string) => void }) => Promise<Record<string, unknown>>;

export class CodecModule {
  private pending: Promise<Record<string, unknown>> | null = null;

  constructor(
    private readonly specifier: string,
    private readonly className: string,
  ) {}

  async decoder(): Promise<EmscriptenDecoder> {
    if (this.pending === null) {
      const factory = require(this.specifier) as Factory;
      // OpenJPEG reports progress on stdout; a library must not write to our stdout.
      this.pending = factory({ print: () => {}, printErr: () => {} });
      this.pending.catch(() => {
        this.pending = null;
      });
    }
    const mod = await this.pending;
    const Ctor = mod[this.className] as new () => EmscriptenDecoder;
    return new Ctor();
  }

  discard(): void {
    this.pending = null;
  }
}

export const openjpeg = new CodecModule('@cornerstonejs/codec-openjpeg/decodewasmjs', 'J2KDecoder');
export const charls = new CodecModule('@cornerstonejs/codec-charls/decodewasmjs', 'JpegLSDecoder');
export const libjpegTurbo = new CodecModule('@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs', 'JPEGDecoder');

/**
 * Runs one decode on a fresh decoder instance: copies the stream in, decodes, copies the
 * samples out (the wasm heap is reused), and frees the instance whatever happens.
 */
export async function decodeWith(
  mod: CodecModule,
  stream: Uint8Array,
  check?: (info: ReturnType<EmscriptenDecoder['getFrameInfo']>) => void,
): Promise<{ bytes: Uint8Array; info: ReturnType<EmscriptenDecoder['getFrameInfo']> }> {
  const dec = await mod.decoder();
  try {
    dec.getEncodedBuffer(stream.length).set(stream);
    dec.decode();
    const info = dec.getFrameInfo();
    check?.(info);
    const bytes = dec.getDecodedBuffer().slice();
    return { bytes, info: { ...info } };
  } catch (e) {
    if (!(e instanceof CxrError)) mod.discard();
    throw e;
  } finally {
    try {
      dec.delete();
    } catch {
      mod.discard();
    }
  }
}
