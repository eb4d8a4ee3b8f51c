/**
 * Image similarity of a variant's picture against the baseline's: PSNR over the 8-bit RGB values and
 * SSIM (Wang, Bovik, Sheikh, Simoncelli 2004) on luma — 11×11 Gaussian window with σ = 1.5, K1 = 0.01,
 * K2 = 0.03, L = 255, statistics over the window positions that lie fully inside the image ("valid",
 * as the paper's reference code), the mean of the SSIM map. The Gaussian filter is separable, so each
 * local mean / variance / covariance is two 1-D passes in float64 (the test checks it against a direct
 * 2-D window loop).
 */
import { psnr8bit } from '../pipeline/image.js';

export { psnr8bit };

export interface GrayImage {
  width: number;
  height: number;
  /** Row-major, values on the 0..255 scale. */
  data: Float64Array;
}

/** ITU-R BT.601 luma of 8-bit RGB (HWC): 0.299 R + 0.587 G + 0.114 B, unrounded. */
export function luma(pixels: Uint8Array, width: number, height: number): GrayImage {
  if (pixels.length !== width * height * 3) throw new RangeError(`luma: ${pixels.length} values for ${width}x${height} RGB`);
  const data = new Float64Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = 0.299 * pixels[3 * i]! + 0.587 * pixels[3 * i + 1]! + 0.114 * pixels[3 * i + 2]!;
  return { width, height, data };
}

export const SSIM_WINDOW = 11;
export const SSIM_SIGMA = 1.5;
export const SSIM_K1 = 0.01;
export const SSIM_K2 = 0.03;

/** The normalized 1-D Gaussian (its outer product is the 2-D window, which sums to 1). */
export function gaussianKernel(size = SSIM_WINDOW, sigma = SSIM_SIGMA): Float64Array {
  const k = new Float64Array(size);
  const c = (size - 1) / 2;
  let sum = 0;
  for (let i = 0; i < size; i++) {
    k[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
    sum += k[i]!;
  }
  for (let i = 0; i < size; i++) k[i]! /= sum;
  return k;
}

/** "valid" separable filtering: out[(H-n+1) × (W-n+1)]. */
function filterValid(src: Float64Array, width: number, height: number, k: Float64Array): Float64Array {
  const n = k.length;
  const ow = width - n + 1;
  const oh = height - n + 1;
  const rows = new Float64Array(height * ow);
  for (let y = 0; y < height; y++) {
    const base = y * width;
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i]! * src[base + x + i]!;
      rows[y * ow + x] = s;
    }
  }
  const out = new Float64Array(oh * ow);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i]! * rows[(y + i) * ow + x]!;
      out[y * ow + x] = s;
    }
  }
  return out;
}

/** Mean SSIM of two gray images of the same size (each side at least the window size). */
export function ssimGray(a: GrayImage, b: GrayImage, dynamicRange = 255): number {
  if (a.width !== b.width || a.height !== b.height) throw new RangeError(`SSIM: ${a.width}x${a.height} vs ${b.width}x${b.height}`);
  const { width, height } = a;
  if (width < SSIM_WINDOW || height < SSIM_WINDOW) throw new RangeError(`SSIM needs images of at least ${SSIM_WINDOW}x${SSIM_WINDOW}, got ${width}x${height}`);
  const k = gaussianKernel();
  const n = width * height;
  const aa = new Float64Array(n), bb = new Float64Array(n), ab = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = a.data[i]!, y = b.data[i]!;
    aa[i] = x * x;
    bb[i] = y * y;
    ab[i] = x * y;
  }
  const muA = filterValid(a.data, width, height, k);
  const muB = filterValid(b.data, width, height, k);
  const eAA = filterValid(aa, width, height, k);
  const eBB = filterValid(bb, width, height, k);
  const eAB = filterValid(ab, width, height, k);
  const c1 = (SSIM_K1 * dynamicRange) ** 2;
  const c2 = (SSIM_K2 * dynamicRange) ** 2;
  let sum = 0;
  for (let i = 0; i < muA.length; i++) {
    const ma = muA[i]!, mb = muB[i]!;
    const va = eAA[i]! - ma * ma, vb = eBB[i]! - mb * mb, cov = eAB[i]! - ma * mb;
    sum += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
  }
  return sum / muA.length;
}

/** SSIM of two 8-bit RGB (HWC) images on their luma. Identical images give exactly 1. */
export function ssimRgb(a: Uint8Array, b: Uint8Array, width: number, height: number): number {
  if (a.length === b.length && a.every((v, i) => v === b[i])) return 1;
  return ssimGray(luma(a, width, height), luma(b, width, height));
}

/** JSON has no Infinity: identical → null. */
export function dbOrNull(db: number): number | null {
  return Number.isFinite(db) ? db : null;
}
