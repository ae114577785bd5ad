// jpeg-lossless-decoder-js points "types" at a file it does not ship.
declare module 'jpeg-lossless-decoder-js' {
  export class Decoder {
    constructor(buffer?: ArrayBuffer | null, numBytes?: number);
    decompress(buffer: ArrayBuffer, offset: number, length: number): ArrayBuffer | Uint8Array | Uint16Array;
    numComp: number;
    precision: number | undefined;
  }
}
