/** What a reviewer looks at: the windowed image, the lung mask over it, and the activation map over it. */
import { heatmapOverlay, maskOverlay } from '../imaging/overlay.js';
import { encodeGrayPng, encodeRgbPng } from '../imaging/png.js';
import type { GrayImage } from '../imaging/types.js';

export interface StudyImages {
  image: Buffer;
  mask: Buffer;
  heatmap: Buffer;
}

export async function renderStudyImages(a: { windowed: GrayImage; mask: GrayImage; heatmap: GrayImage }): Promise<StudyImages> {
  const m = maskOverlay(a.windowed, a.mask);
  const h = heatmapOverlay(a.windowed, a.heatmap);
  const [image, mask, heatmap] = await Promise.all([
    encodeGrayPng(a.windowed),
    encodeRgbPng(m.data, m.width, m.height),
    encodeRgbPng(h.data, h.width, h.height),
  ]);
  return { image, mask, heatmap };
}
