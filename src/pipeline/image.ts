/**
 * VAE output → picture, as diffusers' VaeImageProcessor.postprocess + numpy_to_pil do it in float32:
 * `clamp(x / 2 + 0.5, 0, 1)` per value, then `(x * 255).round().astype(uint8)` (numpy rounds half to even).
 */
import type { RgbImage } from './png.js';

const f32 = Math.fround;

/** numpy.round: half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** [1,3,H,W] decoder output in [-1,1] (raw) → float32 HWC in [0,1] (diffusers' output_type="np"). */
export function decodedToFloatImage(image: Float32Array, height: number, width: number): Float32Array {
  const plane = height * width;
  if (image.length !== 3 * plane) throw new RangeError(`VAE image has ${image.length} values, expected 3x${height}x${width}`);
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < plane; p++) {
      const v = f32(f32(image[c * plane + p]! / 2) + 0.5);
      out[p * 3 + c] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
  return out;
}

/** float HWC in [0,1] → 8-bit, `(x * 255).round()` in float32 as numpy_to_pil. */
export function floatImageTo8bit(hwc: Float32Array): Uint8Array {
  const out = new Uint8Array(hwc.length);
  for (let i = 0; i < hwc.length; i++) out[i] = roundHalfEven(f32(hwc[i]! * 255));
  return out;
}

export function decodedToRgb(image: Float32Array, height: number, width: number): RgbImage {
  return { width, height, pixels: floatImageTo8bit(decodedToFloatImage(image, height, width)) };
}

/** PSNR in dB of two 8-bit images (peak 255); Infinity when identical. */
export function psnr8bit(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new RangeError(`PSNR: ${a.length} vs ${b.length} values`);
  let se = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    se += d * d;
  }
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255) / (se / a.length));
}
