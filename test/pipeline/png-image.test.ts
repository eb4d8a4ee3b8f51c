/**
 * PNG text chunks (written by hand after IHDR, read back with CRC checks), and the float → 8-bit
 * conversion checked against diffusers' own image.png for the reference generations.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../src/errors.js';
import { decodedToFloatImage, floatImageTo8bit, psnr8bit } from '../../src/pipeline/image.js';
import { crc32, decodePng, encodePng, readPngText, textChunk } from '../../src/pipeline/png.js';
import { readNpy } from '../../src/runtime/npy.js';

const REF = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures/pipeline-reference');
const hasFixtures = fs.existsSync(path.join(REF, 'cases'));

function gradient(width: number, height: number): Uint8Array {
  const px = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const i = (y * width + x) * 3;
    px[i] = (x * 37) & 255; px[i + 1] = (y * 53) & 255; px[i + 2] = (x * y) & 255;
  }
  return px;
}

describe('PNG with text chunks', () => {
  it('crc32 known answers (PNG / zlib CRC-32)', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    // IEND's CRC, as every PNG ends with it.
    expect(crc32(new TextEncoder().encode('IEND'))).toBe(0xae426082);
  });

  it('pixels survive the round trip; tEXt / iTXt entries read back in order, after IHDR', () => {
    const pixels = gradient(13, 7);
    const text = { prompt: 'cat in a tuxedo, oil on canvas', negative_prompt: 'blurry, café', seed: '231', scheduler: 'PNDMScheduler', emoji: 'a 🐱 in 東京' };
    const png = encodePng({ width: 13, height: 7, pixels }, text);
    const decoded = decodePng(png);
    expect(decoded.width).toBe(13);
    expect(decoded.height).toBe(7);
    expect(Buffer.from(decoded.pixels).equals(Buffer.from(pixels))).toBe(true);
    expect(readPngText(png)).toEqual(text);
    // pngjs reads the file too (its CRC checks pass with our chunks in).
    expect(PNG.sync.read(png).width).toBe(13);
    // Chunk order: IHDR, then ours (Latin-1 → tEXt, the emoji/CJK one → iTXt).
    const types: string[] = [];
    for (let pos = 8; pos < png.length;) {
      const len = png.readUInt32BE(pos);
      types.push(png.toString('latin1', pos + 4, pos + 8));
      pos += 12 + len;
    }
    expect(types.slice(0, 6)).toEqual(['IHDR', 'tEXt', 'tEXt', 'tEXt', 'tEXt', 'iTXt']);
    expect(types.at(-1)).toBe('IEND');
  });

  it('a corrupted chunk or keyword is an error, not garbage', () => {
    const png = encodePng({ width: 2, height: 2, pixels: gradient(2, 2) }, { prompt: 'x' });
    const bad = Buffer.from(png);
    bad[33 + 8 + 2] ^= 0x01; // a byte inside the tEXt data
    expect(() => readPngText(bad, 'bad.png')).toThrow(ModelFormatError);
    expect(() => readPngText(bad, 'bad.png')).toThrow(/bad\.png: PNG chunk tEXt at byte 33 has a bad CRC/);
    expect(() => readPngText(Buffer.from('not a png'))).toThrow(/bad signature/);
    expect(() => textChunk('', 'x')).toThrow(RangeError);
    expect(() => textChunk('a'.repeat(80), 'x')).toThrow(RangeError);
    expect(() => encodePng({ width: 3, height: 3, pixels: new Uint8Array(5) })).toThrow(/needs 27/);
  });
});

describe.skipIf(!hasFixtures)('image conversion as diffusers numpy_to_pil', () => {
  for (const name of ['sd15-pndm-cat231', 'sdxl-euler-cat231']) {
    it(`${name}: (image.npy * 255).round() equals diffusers' image.png byte for byte`, () => {
      const img = readNpy(path.join(REF, 'cases', name, 'image.npy'));
      const ours = floatImageTo8bit(img.data as Float32Array);
      const theirs = decodePng(fs.readFileSync(path.join(REF, 'cases', name, 'image.png')));
      expect(theirs.width).toBe(img.shape[1]);
      expect(psnr8bit(ours, theirs.pixels)).toBe(Infinity);
    });
  }

  it('decodedToFloatImage: clamp(x/2 + 0.5) and CHW → HWC', () => {
    // [1,3,1,2]: channel planes of 2 pixels.
    const out = decodedToFloatImage(Float32Array.from([-1.5, 1.5, 0, 0.5, -0.25, 1]), 1, 2);
    expect(Array.from(out)).toEqual([0, 0.5, 0.375, 1, 0.75, 1]);
    // Half-way values round to even as numpy does: 0.5/255·255 → exactly k + 0.5 cases.
    expect(Array.from(floatImageTo8bit(Float32Array.from([0.5 / 255, 1.5 / 255, 2.5 / 255])))).toEqual([0, 2, 2]);
  });
});
