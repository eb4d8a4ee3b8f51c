/**
 * PNG output with text metadata. pngjs writes the pixels; it has no text-chunk support, so the
 * tEXt (Latin-1) or iTXt (UTF-8, for prompts with emoji or CJK) chunks are spliced in right after
 * IHDR, each with its CRC-32 (PNG spec §11.3.4).
 */
import { PNG } from 'pngjs';
import { ModelFormatError } from '../errors.js';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO-HDLC, as PNG uses) of `bytes`. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

const isLatin1 = (s: string): boolean => /^[\u0000-\u00ff]*$/.test(s) && !s.includes('\u0000');

/** One tEXt chunk, or iTXt when the text is not Latin-1. Keywords: 1–79 Latin-1 characters, no NUL. */
export function textChunk(keyword: string, text: string): Uint8Array {
  if (!/^[\u0020-\u007e\u00a1-\u00ff]{1,79}$/.test(keyword) || /^ | $|  /.test(keyword)) {
    throw new RangeError(`PNG text keyword '${keyword}' must be 1-79 printable Latin-1 characters without leading, trailing or double spaces`);
  }
  const key = Uint8Array.from(keyword, (c) => c.charCodeAt(0));
  if (isLatin1(text)) {
    const data = new Uint8Array(key.length + 1 + text.length);
    data.set(key, 0);
    for (let i = 0; i < text.length; i++) data[key.length + 1 + i] = text.charCodeAt(i);
    return chunk('tEXt', data);
  }
  // iTXt: keyword NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL, UTF-8 text.
  const utf8 = new TextEncoder().encode(text);
  const data = new Uint8Array(key.length + 5 + utf8.length);
  data.set(key, 0);
  data.set(utf8, key.length + 5);
  return chunk('iTXt', data);
}

export interface RgbImage {
  width: number;
  height: number;
  /** 8-bit RGB, row-major HWC. */
  pixels: Uint8Array;
}

/** Encodes 8-bit RGB pixels as PNG with the given text entries (in order) after IHDR. */
export function encodePng(image: RgbImage, text: Record<string, string> = {}): Buffer {
  const { width, height, pixels } = image;
  if (pixels.length !== width * height * 3) throw new RangeError(`PNG: ${pixels.length} bytes for ${width}x${height} RGB (needs ${width * height * 3})`);
  const png = new PNG({ width, height, colorType: 2, inputColorType: 2, inputHasAlpha: false, bitDepth: 8 });
  png.data = Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  const base = PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false, bitDepth: 8 });
  const chunks = Object.entries(text).map(([k, v]) => textChunk(k, v));
  const ihdrEnd = 8 + 25; // signature + IHDR (length 4, type 4, data 13, CRC 4)
  return Buffer.concat([base.subarray(0, ihdrEnd), ...chunks, base.subarray(ihdrEnd)]);
}

/** Reads every tEXt / iTXt entry of a PNG, checking each chunk's CRC. */
export function readPngText(bytes: Uint8Array, file = '<png>'): Record<string, string> {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 8 || sig.some((b, i) => bytes[i] !== b)) throw new ModelFormatError('not a PNG file (bad signature)', { file });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Record<string, string> = {};
  let pos = 8;
  while (pos + 12 <= bytes.length) {
    const len = view.getUint32(pos);
    if (pos + 12 + len > bytes.length) throw new ModelFormatError(`PNG chunk at byte ${pos} runs past the end of the file`, { file });
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    const data = bytes.subarray(pos + 8, pos + 8 + len);
    if (crc32(bytes.subarray(pos + 4, pos + 8 + len)) !== view.getUint32(pos + 8 + len)) {
      throw new ModelFormatError(`PNG chunk ${type} at byte ${pos} has a bad CRC`, { file });
    }
    if (type === 'tEXt' || type === 'iTXt') {
      const nul = data.indexOf(0);
      if (nul < 1) throw new ModelFormatError(`PNG ${type} chunk without a keyword`, { file });
      const key = String.fromCharCode(...data.subarray(0, nul));
      if (type === 'tEXt') out[key] = Array.from(data.subarray(nul + 1), (b) => String.fromCharCode(b)).join('');
      else {
        if (data[nul + 1] !== 0) throw new ModelFormatError(`compressed iTXt chunk '${key}' is not supported`, { file });
        let p = nul + 3;
        for (let skip = 0; skip < 2; skip++) {
          const z = data.indexOf(0, p);
          if (z < 0) throw new ModelFormatError(`PNG iTXt chunk '${key}' is truncated`, { file });
          p = z + 1;
        }
        out[key] = new TextDecoder('utf-8', { fatal: true }).decode(data.subarray(p));
      }
    }
    if (type === 'IEND') break;
    pos += 12 + len;
  }
  return out;
}

/** Decodes a PNG to 8-bit RGB (alpha dropped). */
export function decodePng(bytes: Uint8Array): RgbImage {
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const pixels = new Uint8Array(png.width * png.height * 3);
  for (let i = 0, j = 0; i < pixels.length; i += 3, j += 4) {
    pixels[i] = png.data[j]!;
    pixels[i + 1] = png.data[j + 1]!;
    pixels[i + 2] = png.data[j + 2]!;
  }
  return { width: png.width, height: png.height, pixels };
}
