/**
 * Writing a synthetic diffusers UNet checkpoint (`diffusion_pytorch_model.safetensors`) from a list of tensor
 * shapes: header first (offsets follow from the shapes), then each tensor's data streamed in order, so even a
 * full-size SDXL UNet never sits in memory. Values come from src/util/synthetic (deterministic per name).
 */
import fs from 'node:fs';
import { seedOf } from './common.mjs';

export const numel = (shape) => shape.reduce((a, b) => a * b, 1);
const WIDTH = { F16: 2, BF16: 2, F32: 4 };

/**
 * tensors: [{ name, shape }]; sourceDtype: F16 | F32 | BF16; `fanIn(name, shape)` overrides the default
 * fan-in (product of all but the first dim) that scales each weight. Returns the file size in bytes.
 */
export async function writeSyntheticSafetensors(file, tensors, sourceDtype = 'F16', { fsync = false, fanIn: fanInOf } = {}) {
  const { syntheticFp16, syntheticFp32 } = await import(new URL('../../dist/util/synthetic.js', import.meta.url).href);
  const header = {};
  let at = 0;
  for (const t of tensors) {
    const bytes = numel(t.shape) * WIDTH[sourceDtype];
    header[t.name] = { dtype: sourceDtype, shape: t.shape, data_offsets: [at, at + bytes] };
    at += bytes;
  }
  let h = JSON.stringify(header);
  while ((8 + h.length) % 8) h += ' ';
  const fd = fs.openSync(file, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeSync(fd, len);
  fs.writeSync(fd, h);
  for (const t of tensors) {
    const count = numel(t.shape);
    const leaf = t.name.split('.').at(-1);
    const kind = /norm/.test(t.name) && leaf === 'weight' ? 'norm' : leaf === 'bias' || t.shape.length === 1 ? 'bias' : 'weight';
    const fanIn = fanInOf ? fanInOf(t.name, t.shape) : t.shape.length > 1 ? numel(t.shape.slice(1)) : 1;
    let data;
    if (sourceDtype === 'F16') data = syntheticFp16({ count, kind, fanIn, seed: seedOf(t.name) });
    else {
      const f = syntheticFp32({ count, kind, fanIn, seed: seedOf(t.name) });
      if (sourceDtype === 'F32') data = f;
      else { // BF16: the top half of each fp32 (truncation is fine for synthetic data)
        const u = new Uint32Array(f.buffer, f.byteOffset, f.length);
        data = Uint16Array.from(u, (x) => x >>> 16);
      }
    }
    fs.writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  if (fsync) fs.fsyncSync(fd);
  fs.closeSync(fd);
  return fs.statSync(file).size;
}
