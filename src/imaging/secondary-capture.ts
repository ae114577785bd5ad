/**
 * The picture of an AI result a PACS can show without any plug-in: the windowed film with the
 * heatmap blended over it and the lung outline drawn on top, under a text banner that says
 * what it is (not for diagnostic use), the probability, the decision and the model. The film
 * is scaled so its long side is 512..1024 pixels: large enough to read the banner, small
 * enough that a result costs far less to send than the original.
 */
import sharp from 'sharp';
import { heatmapOverlay, maskOutline, type RgbImage } from './overlay.js';
import { resizeBilinear } from './resize.js';
import type { GrayImage } from './types.js';

export interface ResultPictureInput {
  windowed: GrayImage;
  mask: GrayImage;
  heatmap: GrayImage;
  /** banner lines, top to bottom */
  lines: readonly string[];
}

const OUTLINE: [number, number, number] = [0, 230, 64];

/** The picture's film size for a film of w x h: long side 512..1024, aspect kept. */
export function resultPictureSize(w: number, h: number): { width: number; height: number } {
  const long = Math.max(w, h);
  const target = Math.min(Math.max(long, 512), 1024);
  const k = target / long;
  return { width: Math.max(1, Math.round(w * k)), height: Math.max(1, Math.round(h * k)) };
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[ch]!);
}

/** White text on black, one line per entry, as RGB rows of the given width. */
export async function renderBanner(width: number, lines: readonly string[]): Promise<RgbImage> {
  const size = Math.max(11, Math.round(width / 48));
  const lineHeight = Math.round(size * 1.35);
  const height = lineHeight * lines.length + Math.round(size * 0.6);
  const text = lines
    .map(
      (l, i) =>
        `<text x="${Math.round(size * 0.5)}" y="${lineHeight * (i + 1)}" font-family="DejaVu Sans, Liberation Sans, sans-serif" font-size="${size}" fill="#ffffff">${escapeXml(l)}</text>`,
    )
    .join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="${width}" height="${height}" fill="#000000"/>${text}</svg>`;
  const { data, info } = await sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** The result picture: banner on top, the annotated film below (RGB, 8 bits a sample). */
export async function renderResultPicture(a: ResultPictureInput): Promise<RgbImage> {
  const { width, height } = resultPictureSize(a.windowed.width, a.windowed.height);
  // layers drawn at the picture's size already (storedLayers with a fit) are used as they are
  const fit = (g: GrayImage) => (g.width === width && g.height === height ? g : resizeBilinear(g, width, height));
  const film = fit(a.windowed);
  const heat = fit(a.heatmap);
  const mask = fit(a.mask);
  const picture = heatmapOverlay(film, heat);
  const outline = maskOutline(mask, Math.max(1, Math.round(Math.min(width, height) / 256)));
  for (let i = 0; i < outline.length; i++) {
    if (!outline[i]) continue;
    for (let ch = 0; ch < 3; ch++) picture.data[i * 3 + ch] = OUTLINE[ch];
  }
  const banner = await renderBanner(width, a.lines);
  const out = new Uint8Array(width * (banner.height + height) * 3);
  out.set(banner.data, 0);
  out.set(picture.data, banner.data.length);
  return { width, height: banner.height + height, data: out };
}
