/**
 * Reads the frame size a JPEG, JPEG-LS or JPEG 2000 codestream declares, without decoding
 * it, so a stream that claims a larger image than the DICOM header is refused before a
 * codec allocates for it.
 */
export interface StreamHeader {
  width: number;
  height: number;
  components: number;
  precision: number;
  /** the SOF marker for JPEG family streams (0xC0..0xCF, 0xF7 for JPEG-LS); 0x51 for J2K SIZ */
  marker: number;
}

function isSof(m: number): boolean {
  return (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) || m === 0xf7;
}

/** JPEG (ITU T.81) and JPEG-LS (T.87): walk marker segments from SOI to the first SOF. */
export function readJpegHeader(s: Uint8Array): StreamHeader | null {
  if (s.length < 4 || s[0] !== 0xff || s[1] !== 0xd8) return null;
  let i = 2;
  while (i + 1 < s.length) {
    if (s[i] !== 0xff) return null;
    let m = s[i + 1];
    while (m === 0xff && i + 2 < s.length) {
      i++;
      m = s[i + 1];
    }
    i += 2;
    if ((m >= 0xd0 && m <= 0xd7) || m === 0x01) continue;
    if (i + 2 > s.length) return null;
    const len = (s[i] << 8) | s[i + 1];
    if (len < 2) return null;
    if (isSof(m)) {
      if (i + 8 > s.length) return null;
      return {
        precision: s[i + 2],
        height: (s[i + 3] << 8) | s[i + 4],
        width: (s[i + 5] << 8) | s[i + 6],
        components: s[i + 7],
        marker: m,
      };
    }
    if (m === 0xda) return null; // scan before any frame header
    i += len;
  }
  return null;
}

function u32(s: Uint8Array, i: number): number {
  return ((s[i] << 24) | (s[i + 1] << 16) | (s[i + 2] << 8) | s[i + 3]) >>> 0;
}

/** JPEG 2000: the SIZ segment after SOC, in a raw codestream or inside a JP2 'jp2c' box. */
export function readJ2kHeader(s: Uint8Array): StreamHeader | null {
  let start = 0;
  if (s.length >= 12 && u32(s, 4) === 0x6a502020) {
    // JP2 file format: walk boxes to the contiguous codestream box.
    let i = 0;
    start = -1;
    while (i + 8 <= s.length) {
      let len = u32(s, i);
      const type = u32(s, i + 4);
      let header = 8;
      if (len === 1 && i + 16 <= s.length) {
        len = u32(s, i + 12); // 64-bit length; the high word must be 0 for anything we accept
        header = 16;
      }
      if (type === 0x6a703263) {
        start = i + header;
        break;
      }
      if (len === 0 || len < header) return null;
      i += len;
    }
    if (start < 0) return null;
  }
  const i = start;
  if (i + 43 > s.length || s[i] !== 0xff || s[i + 1] !== 0x4f || s[i + 2] !== 0xff || s[i + 3] !== 0x51) return null;
  const p = i + 4; // Lsiz
  const xsiz = u32(s, p + 4);
  const ysiz = u32(s, p + 8);
  const xo = u32(s, p + 12);
  const yo = u32(s, p + 16);
  const components = (s[p + 36] << 8) | s[p + 37];
  const ssiz = s[p + 38];
  return { width: xsiz - xo, height: ysiz - yo, components, precision: (ssiz & 0x7f) + 1, marker: 0x51 };
}
