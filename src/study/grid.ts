/**
 * grid.png: the baseline and every variant side by side (first prompt / seed), each cell the image
 * scaled to fit and two text lines under it (config, size), drawn with the embedded 5×7 font.
 */
import { encodePng } from '../pipeline/png.js';
import { drawText, GLYPH_HEIGHT, textWidth, type RgbCanvas } from './font.js';

export interface GridCell {
  image: RgbCanvas;
  lines: string[];
}

/** Box-filter downscale (area average) so the longer side is at most `max`; smaller images pass through. */
export function fitImage(img: RgbCanvas, max: number): RgbCanvas {
  const scale = Math.max(img.width, img.height) / max;
  if (scale <= 1) return img;
  const w = Math.max(1, Math.round(img.width / scale));
  const h = Math.max(1, Math.round(img.height / scale));
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const y0 = Math.floor((y * img.height) / h), y1 = Math.max(y0 + 1, Math.floor(((y + 1) * img.height) / h));
    for (let x = 0; x < w; x++) {
      const x0 = Math.floor((x * img.width) / w), x1 = Math.max(x0 + 1, Math.floor(((x + 1) * img.width) / w));
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) s += img.pixels[(yy * img.width + xx) * 3 + c]!;
        out[(y * w + x) * 3 + c] = Math.round(s / ((y1 - y0) * (x1 - x0)));
      }
    }
  }
  return { width: w, height: h, pixels: out };
}

/** Shortens `text` with "..." to fit `width` pixels at `scale`. */
function fitText(text: string, width: number, scale: number): string {
  if (textWidth(text, scale) <= width) return text;
  let t = text;
  while (t.length > 0 && textWidth(`${t}...`, scale) > width) t = t.slice(0, -1);
  return `${t}...`;
}

export interface GridOptions {
  /** Cell image size (longer side), default 256. */
  cell?: number;
  columns?: number;
  /** Font scale (1 = 5×7 pixels), default 2 for cells ≥ 200 px. */
  fontScale?: number;
}

/** Lays out the cells and draws the labels; returns the canvas. */
export function renderGrid(cells: GridCell[], options: GridOptions = {}): RgbCanvas {
  // Cells as large as the largest image, up to `cell`; labels widen a column up to twice that.
  const cell = Math.min(options.cell ?? 256, Math.max(...cells.map((c) => Math.max(c.image.width, c.image.height))));
  const scale = options.fontScale ?? (cell >= 200 ? 2 : 1);
  const columns = Math.max(1, Math.min(options.columns ?? 4, cells.length));
  const rows = Math.ceil(cells.length / columns);
  const pad = 8;
  const lineH = (GLYPH_HEIGHT + 3) * scale;
  const maxLines = Math.max(1, ...cells.map((c) => c.lines.length));
  const textW = Math.max(...cells.flatMap((c) => c.lines.map((l) => textWidth(l, scale))));
  const colW = Math.min(2 * cell, Math.max(cell, textW));
  const cellW = colW + 2 * pad;
  const cellH = cell + pad + maxLines * lineH + pad;
  const canvas: RgbCanvas = { width: columns * cellW + pad, height: rows * cellH + pad, pixels: new Uint8Array(0) };
  canvas.pixels = new Uint8Array(canvas.width * canvas.height * 3).fill(255);
  cells.forEach((c, i) => {
    const img = fitImage(c.image, cell);
    const x0 = pad + (i % columns) * cellW;
    const y0 = pad + Math.floor(i / columns) * cellH;
    const ox = x0 + Math.floor((colW - img.width) / 2);
    const oy = y0 + Math.floor((cell - img.height) / 2);
    for (let y = 0; y < img.height; y++) {
      canvas.pixels.set(img.pixels.subarray(y * img.width * 3, (y + 1) * img.width * 3), ((oy + y) * canvas.width + ox) * 3);
    }
    const ty = y0 + cell + pad;
    c.lines.forEach((line, k) => drawText(canvas, fitText(line, colW, scale), x0, ty + k * lineH, k === 0 ? [0, 0, 0] : [80, 80, 80], scale));
  });
  return canvas;
}

/** grid.png bytes (pngjs via the pipeline's PNG writer), with a Software text chunk. */
export function encodeGridPng(img: RgbCanvas): Buffer {
  return encodePng(img, { Software: 'coreml-optimize study' });
}
