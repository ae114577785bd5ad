import sharp from 'sharp';
import { CxrError } from '../errors.js';
import { grayImage, type GrayImage } from './types.js';

/** 8-bit grey level of a [0,1] value: round(255*y), clamped (the DESIGN's render rule). */
export function toGray8(img: GrayImage): Uint8Array {
  const out = new Uint8Array(img.data.length);
  const d = img.data;
  for (let i = 0; i < d.length; i++) {
    const v = Math.round(255 * d[i]);
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return out;
}

export async function encodeGrayPng(img: GrayImage): Promise<Buffer> {
  return sharp(toGray8(img), { raw: { width: img.width, height: img.height, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}

export async function encodeRgbPng(rgb: Uint8Array, width: number, height: number): Promise<Buffer> {
  if (rgb.length !== width * height * 3) throw new RangeError('rgb buffer size does not match dimensions');
  return sharp(rgb, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

/**
 * Decodes a PNG or JPEG display image to grey values in [0,1]. These are display images
 * already, so no window is applied (DESIGN, "Pixels"). 16-bit PNGs keep their precision.
 */
export async function decodeDisplayImage(bytes: Uint8Array, name = 'image'): Promise<GrayImage> {
  try {
    const meta = await sharp(bytes).metadata();
    const sixteen = meta.depth === 'ushort';
    const { data, info } = await sharp(bytes)
      .grayscale()
      .raw({ depth: sixteen ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const n = info.width * info.height;
    const out = grayImage(info.width, info.height);
    if (sixteen) {
      const v = new Uint16Array(data.buffer, data.byteOffset, n * info.channels);
      for (let i = 0; i < n; i++) out.data[i] = v[i * info.channels] / 65535;
    } else {
      for (let i = 0; i < n; i++) out.data[i] = data[i * info.channels] / 255;
    }
    return out;
  } catch (e) {
    throw new CxrError('E_BAD_IMAGE', `${name}: not a readable PNG/JPEG image (${(e as Error).message})`);
  }
}

/** A rendered image for a viewer (WADO-RS rendered): 8-bit grey or RGB as PNG, or JPEG at `quality`. */
export async function encodeRendered(
  img: { width: number; height: number; channels: 1 | 3; pixels: Uint8Array },
  format: 'png' | 'jpeg',
  quality = 90,
  /** fit inside this box, keeping the aspect ratio, never enlarging */
  viewport?: { width: number; height: number },
): Promise<Buffer> {
  let s = sharp(img.pixels, { raw: { width: img.width, height: img.height, channels: img.channels } });
  if (viewport) s = s.resize(viewport.width, viewport.height, { fit: 'inside', withoutEnlargement: true });
  const shaped = img.channels === 1 ? s.toColourspace('b-w') : s;
  return format === 'png' ? shaped.png().toBuffer() : shaped.jpeg({ quality, chromaSubsampling: img.channels === 1 ? '4:4:4' : '4:2:0' }).toBuffer();
}
