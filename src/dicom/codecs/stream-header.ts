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

/** Where the raw codestream starts: 0, or inside a JP2 file's 'jp2c' box; -1 when there is none. */
function j2kCodestreamStart(s: Uint8Array): number {
  if (!(s.length >= 12 && u32(s, 4) === 0x6a502020)) return 0;
  // JP2 file format: walk boxes to the contiguous codestream box.
  let i = 0;
  while (i + 8 <= s.length) {
    let len = u32(s, i);
    const type = u32(s, i + 4);
    let header = 8;
    if (len === 1 && i + 16 <= s.length) {
      len = u32(s, i + 12); // 64-bit length; the high word must be 0 for anything we accept
      header = 16;
    }
    if (type === 0x6a703263) return i + header;
    if (len === 0 || len < header) return -1;
    i += len;
  }
  return -1;
}

/** JPEG 2000: the SIZ segment after SOC, in a raw codestream or inside a JP2 'jp2c' box. */
export function readJ2kHeader(s: Uint8Array): StreamHeader | null {
  const i = j2kCodestreamStart(s);
  if (i < 0 || i + 43 > s.length || s[i] !== 0xff || s[i + 1] !== 0x4f || s[i + 2] !== 0xff || s[i + 3] !== 0x51) return null;
  const p = i + 4; // Lsiz
  const xsiz = u32(s, p + 4);
  const ysiz = u32(s, p + 8);
  const xo = u32(s, p + 12);
  const yo = u32(s, p + 16);
  const components = (s[p + 36] << 8) | s[p + 37];
  const ssiz = s[p + 38];
  return { width: xsiz - xo, height: ysiz - yo, components, precision: (ssiz & 0x7f) + 1, marker: 0x51 };
}

const u16 = (s: Uint8Array, i: number) => (s[i] << 8) | s[i + 1];

/**
 * JPEG 2000: why a codestream cannot hold its whole image, or null when every tile the SIZ
 * segment declares has a tile-part (SOT) that fits in the stream. Why: OpenJPEG decodes a
 * stream with missing tiles without complaint and fills them with zeros, so a lost fragment
 * became a film with black squares; and a few hundred bytes declaring a large image of small
 * tiles made it allocate for all of them.
 */
export function j2kMissingTiles(s: Uint8Array): string | null {
  const start = j2kCodestreamStart(s);
  if (start < 0 || start + 43 > s.length || u16(s, start) !== 0xff4f || u16(s, start + 2) !== 0xff51) return 'no SIZ segment after SOC';
  const p = start + 4;
  const [xsiz, ysiz, xtsiz, ytsiz, xtosiz, ytosiz] = [4, 8, 20, 24, 28, 32].map((o) => u32(s, p + o));
  if (xtsiz === 0 || ytsiz === 0 || xtosiz >= xsiz || ytosiz >= ysiz) return 'the SIZ segment declares no tile grid';
  const tiles = Math.ceil((xsiz - xtosiz) / xtsiz) * Math.ceil((ysiz - ytosiz) / ytsiz);
  // a tile-part names its tile in 16 bits
  if (tiles > 65535) return `the SIZ segment declares ${tiles} tiles (at most 65535 can be addressed)`;
  // main header: marker segments up to the first SOT
  let i = p + u16(s, p);
  while (i + 4 <= s.length && u16(s, i) !== 0xff90) {
    if (s[i] !== 0xff || u16(s, i) === 0xffd9) return 'no tile-part before the end of the codestream';
    i += 2 + u16(s, i + 2);
  }
  const seen = new Uint8Array(tiles);
  while (i + 12 <= s.length && u16(s, i) === 0xff90) {
    const tile = u16(s, i + 4);
    const length = u32(s, i + 6);
    if (tile >= tiles) return `a tile-part names tile ${tile} of ${tiles}`;
    seen[tile] = 1;
    // Psot 0: this tile-part runs to the end of the codestream
    if (length === 0) break;
    if (length < 14 || i + length > s.length) return `tile-part of tile ${tile} claims ${length} bytes, ${s.length - i} remain: the stream is truncated`;
    i += length;
  }
  const present = seen.reduce((n, x) => n + x, 0);
  return present === tiles ? null : `the codestream holds tile-parts of ${present} of its ${tiles} tiles: it is truncated`;
}

/**
 * JPEG (lossless): whether the stream ends with its EOI marker, ignoring the zero bytes that
 * pad a DICOM fragment to even length. EOI cannot occur inside entropy-coded data (a 0xFF
 * there is followed by 0x00 or a restart marker), so a stream without it was cut short.
 */
export function jpegEndsWithEoi(s: Uint8Array): boolean {
  let end = s.length;
  while (end > 0 && s[end - 1] === 0) end--;
  return end >= 2 && s[end - 2] === 0xff && s[end - 1] === 0xd9;
}
