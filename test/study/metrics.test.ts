/**
 * Study metrics and pictures: SSIM (Wang et al. 2004) against a direct float64 2-D window loop and closed
 * forms, PSNR by hand, the bitmap font, the grid layout, the plot.
 */
import { describe, expect, it } from 'vitest';
import { drawText, glyphPixel, textWidth } from '../../src/study/font.js';
import { fitImage, renderGrid } from '../../src/study/grid.js';
import { gaussianKernel, luma, psnr8bit, ssimGray, ssimRgb, SSIM_K1, SSIM_K2, type GrayImage } from '../../src/study/metrics.js';
import { mulberry32 } from '../../src/util/random.js';

/** SSIM straight from the paper: every valid 11×11 window, 2-D Gaussian weights, float64. */
function ssimReference(a: GrayImage, b: GrayImage): number {
  const n = 11, sigma = 1.5;
  const w: number[][] = [];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    w.push([]);
    for (let j = 0; j < n; j++) {
      const v = Math.exp(-((i - 5) ** 2 + (j - 5) ** 2) / (2 * sigma * sigma));
      w[i]!.push(v);
      sum += v;
    }
  }
  const c1 = (SSIM_K1 * 255) ** 2, c2 = (SSIM_K2 * 255) ** 2;
  let total = 0, count = 0;
  for (let y = 0; y + n <= a.height; y++) {
    for (let x = 0; x + n <= a.width; x++) {
      let ma = 0, mb = 0;
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
        const k = (y + i) * a.width + x + j;
        ma += (w[i]![j]! / sum) * a.data[k]!;
        mb += (w[i]![j]! / sum) * b.data[k]!;
      }
      let va = 0, vb = 0, cov = 0;
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
        const k = (y + i) * a.width + x + j;
        const g = w[i]![j]! / sum;
        va += g * (a.data[k]! - ma) ** 2;
        vb += g * (b.data[k]! - mb) ** 2;
        cov += g * (a.data[k]! - ma) * (b.data[k]! - mb);
      }
      total += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
      count++;
    }
  }
  return total / count;
}

function randomGray(width: number, height: number, seed: number): GrayImage {
  const r = mulberry32(seed);
  return { width, height, data: Float64Array.from({ length: width * height }, () => Math.round(r() * 255)) };
}

describe('SSIM', () => {
  it('the Gaussian window is normalized and symmetric', () => {
    const k = gaussianKernel();
    expect(k.length).toBe(11);
    expect(k.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 15);
    for (let i = 0; i < 11; i++) expect(k[i]).toBe(k[10 - i]);
    expect(k[5]! / k[4]!).toBeCloseTo(Math.exp(1 / (2 * 1.5 * 1.5)), 12);
  });

  it('separable float64 filtering equals the direct 2-D window loop', () => {
    const a = randomGray(29, 23, 1);
    const noisy = { ...a, data: a.data.map((v, i) => Math.min(255, Math.max(0, v + ((i * 37) % 21) - 10))) };
    const other = randomGray(29, 23, 2);
    for (const b of [noisy, other]) {
      const fast = ssimGray(a, b);
      const ref = ssimReference(a, b);
      expect(Math.abs(fast - ref)).toBeLessThan(1e-12);
    }
    // A smooth image and a slightly brighter copy: SSIM high but below 1.
    const smooth: GrayImage = { width: 20, height: 20, data: Float64Array.from({ length: 400 }, (_, i) => 60 + (i % 20) * 5 + Math.floor(i / 20) * 3) };
    const brighter = { ...smooth, data: smooth.data.map((v) => v + 10) };
    const s = ssimGray(smooth, brighter);
    expect(Math.abs(s - ssimReference(smooth, brighter))).toBeLessThan(1e-12);
    expect(s).toBeGreaterThan(0.9);
    expect(s).toBeLessThan(1);
  });

  it('known cases: identical = 1; two constant images = luminance term only; inverted texture is negative', () => {
    const a = randomGray(16, 16, 3);
    expect(ssimGray(a, a)).toBeCloseTo(1, 14);
    const c1 = (0.01 * 255) ** 2;
    const flat = (v: number): GrayImage => ({ width: 16, height: 16, data: new Float64Array(256).fill(v) });
    expect(ssimGray(flat(100), flat(150))).toBeCloseTo((2 * 100 * 150 + c1) / (100 ** 2 + 150 ** 2 + c1), 12);
    const inverted = { ...a, data: a.data.map((v) => 255 - v) };
    expect(ssimGray(a, inverted)).toBeLessThan(0);
  });

  it('RGB SSIM works on BT.601 luma; identical RGB is exactly 1; too-small images are a RangeError', () => {
    const px = Uint8Array.from({ length: 12 * 12 * 3 }, (_, i) => (i * 53) % 256);
    expect(ssimRgb(px, px, 12, 12)).toBe(1);
    const y = luma(Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]), 4, 1);
    expect([...y.data]).toEqual([0.299 * 255, 0.587 * 255, 0.114 * 255, 0.299 * 10 + 0.587 * 20 + 0.114 * 30]);
    expect(() => ssimRgb(px.subarray(0, 10 * 10 * 3), px.subarray(0, 10 * 10 * 3).map((v) => 255 - v), 10, 10)).toThrow(RangeError);
  });
});

describe('PSNR', () => {
  it('one value off by 4 among 48 → 10·log10(255² / (16/48)); identical → ∞', () => {
    const a = new Uint8Array(48).fill(100);
    const b = a.slice();
    b[7] = 104;
    expect(psnr8bit(a, b)).toBeCloseTo(10 * Math.log10((255 * 255) / (16 / 48)), 12);
    expect(psnr8bit(a, a)).toBe(Infinity);
  });
});

describe('bitmap font and grid', () => {
  it('glyphs: "I" is a bar with serifs, "-" one row; unknown characters draw as "?"', () => {
    const rows = (ch: string) => Array.from({ length: 7 }, (_, r) => Array.from({ length: 5 }, (_, c) => (glyphPixel(ch, c, r) ? '#' : '.')).join(''));
    expect(rows('I')).toEqual(['.###.', '..#..', '..#..', '..#..', '..#..', '..#..', '.###.']);
    expect(rows('-')).toEqual(['.....', '.....', '.....', '#####', '.....', '.....', '.....']);
    expect(rows('\u00e9')).toEqual(rows('?'));
    expect(textWidth('ab', 2)).toBe(22);
  });

  it('drawText sets exactly the glyph pixels (scaled) and clips at the edge', () => {
    const canvas = { width: 12, height: 16, pixels: new Uint8Array(12 * 16 * 3).fill(255) };
    drawText(canvas, 'I', 1, 1, [0, 0, 0], 2);
    const dark = (x: number, y: number) => canvas.pixels[(y * 12 + x) * 3] === 0;
    expect(dark(1 + 2 * 2, 1)).toBe(true); // top serif, column 2
    expect(dark(1, 1)).toBe(false); // column 0 is empty
    expect(dark(1 + 2 * 2 + 1, 1 + 2 * 3 + 1)).toBe(true); // stem, scaled
    let count = 0;
    for (let i = 0; i < canvas.pixels.length; i += 3) if (canvas.pixels[i] === 0) count++;
    expect(count).toBe(11 * 4); // 11 pixels × 2×2, all inside the canvas
    drawText(canvas, 'WWWW', 8, 14, [0, 0, 0]); // mostly outside: no throw
  });

  it('fitImage box-averages; renderGrid places each image and writes its label under it', () => {
    const img = { width: 4, height: 2, pixels: Uint8Array.from([0, 0, 0, 100, 100, 100, 200, 200, 200, 50, 50, 50, 0, 0, 0, 100, 100, 100, 200, 200, 200, 50, 50, 50]) };
    const half = fitImage(img, 2);
    expect([half.width, half.height]).toEqual([2, 1]);
    expect([...half.pixels]).toEqual([50, 50, 50, 125, 125, 125]);
    const red = { width: 32, height: 32, pixels: new Uint8Array(32 * 32 * 3).map((_, i) => (i % 3 === 0 ? 255 : 0)) };
    const grid = renderGrid([{ image: red, lines: ['A'] }, { image: red, lines: ['B', 'x'] }], { columns: 2 });
    // Two columns of (32 + 2·8), one row of 32 + 8 + 2 lines·10 + 8.
    expect(grid.width).toBe(2 * 48 + 8);
    expect(grid.height).toBe(32 + 8 + 20 + 8 + 8);
    const at = (x: number, y: number) => [...grid.pixels.subarray((y * grid.width + x) * 3, (y * grid.width + x) * 3 + 3)];
    expect(at(8 + 8 + 16, 8 + 16)).toEqual([255, 0, 0]); // centre of the first image
    // The label "A" row 0 is ".###." → pixels at x0 + 1..3, y = 8 + 32 + 8.
    expect(at(8 + 1, 48)).toEqual([0, 0, 0]);
    expect(at(8, 48)).toEqual([255, 255, 255]);
  });
});
