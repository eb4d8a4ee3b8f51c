import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SafetensorsFile, WeightStore } from '../../src/convert/safetensors.js';
import { ModelFormatError, UnsupportedError } from '../../src/errors.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-st-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

type Entry = { name: string; dtype: string; shape: number[]; bytes: Uint8Array };

/** A safetensors file as the reference writer lays it out: u64 LE header length, JSON, data. */
function writeSafetensors(file: string, entries: Entry[], options: { header?: string; metadata?: Record<string, string> } = {}): string {
  const header: Record<string, unknown> = {};
  if (options.metadata) header['__metadata__'] = options.metadata;
  let at = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [at, at + e.bytes.length] };
    at += e.bytes.length;
  }
  let json = options.header ?? JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8) json += ' ';
  const h = Buffer.from(json);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, ...entries.map(e => Buffer.from(e.bytes.buffer, e.bytes.byteOffset, e.bytes.byteLength))]));
  return file;
}
const bytesOf = (a: Float32Array | Uint16Array | Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/* Independent fp16 oracle: decode all 65,536 halves by formula (float64), then pick the nearest
   finite half for a value with ties to the even code, as IEEE round-to-nearest-even does. */
const halfValue = (h: number): number => {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
};
const positives = Array.from({ length: 0x7c01 }, (_, h) => halfValue(h)); // 0 … +inf, increasing
function nearestHalf(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a >= 65520) return sign | 0x7c00; // ≥ max + half an ulp rounds to infinity
  let lo = 0, hi = 0x7bff;
  while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (positives[mid]! <= a) lo = mid; else hi = mid; }
  const dl = a - positives[lo]!, dh = positives[hi]! - a;
  const pick = dl < dh ? lo : dh < dl ? hi : (lo % 2 === 0 ? lo : hi);
  return sign | pick;
}

describe('SafetensorsFile', () => {
  it('lists tensors and converts F32 / F16 / BF16 to fp32 and fp16 (known answers)', () => {
    const f32 = Float32Array.from([1, 65504, 65520, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -24, 2 ** -25, 3 * 2 ** -26, -0, NaN, 1e-10, -2.5]);
    const f16 = Uint16Array.from([0x3c00, 0x0001, 0xfc00, 0x7bff, 0x8000, 0x3555]);
    const bf16 = Uint16Array.from([0x3f80, 0xc000, 0x7f80, 0x3f81, 0x4780, 0x477f, 0x3380, 0x3300, 0x3340, 0x0001]);
    const file = writeSafetensors(path.join(dir, 'known.safetensors'), [
      { name: 'a.f32', dtype: 'F32', shape: [3, 4], bytes: bytesOf(f32) },
      { name: 'b.f16', dtype: 'F16', shape: [6], bytes: bytesOf(f16) },
      { name: 'c.bf16', dtype: 'BF16', shape: [2, 5], bytes: bytesOf(bf16) },
      { name: 'd.i32', dtype: 'I32', shape: [2], bytes: bytesOf(Int32Array.from([7, 8])) },
    ], { metadata: { format: 'pt' } });
    const st = SafetensorsFile.open(file);
    expect(st.tensors().map(t => [t.name, t.dtype, t.shape])).toEqual([
      ['a.f32', 'F32', [3, 4]], ['b.f16', 'F16', [6]], ['c.bf16', 'BF16', [2, 5]], ['d.i32', 'I32', [2]],
    ]);
    expect(st.metadata()).toEqual({ format: 'pt' });

    expect(Array.from(st.read('a.f32', 'fp32'))).toEqual(Array.from(f32));
    expect(Array.from(st.read('a.f32', 'fp16'))).toEqual([0x3c00, 0x7bff, 0x7c00, 0x3c00, 0x3c02, 0x0001, 0x0000, 0x0001, 0x8000, 0x7e00, 0x0000, 0xc100]);
    expect(Array.from(st.read('b.f16', 'fp16'))).toEqual(Array.from(f16));
    expect(Array.from(st.read('b.f16', 'fp32'))).toEqual([1, 2 ** -24, -Infinity, 65504, -0, Math.fround(0.333251953125)]);
    expect(Array.from(st.read('c.bf16', 'fp32'))).toEqual([1, -2, Infinity, 1.0078125, 65536, 65280, 2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 2 ** -133]);
    expect(Array.from(st.read('c.bf16', 'fp16'))).toEqual([0x3c00, 0xc000, 0x7c00, 0x3c08, 0x7c00, 0x7bf8, 0x0001, 0x0000, 0x0001, 0x0000]);
    expect(() => st.read('d.i32', 'fp32')).toThrow(UnsupportedError);
    expect(() => st.read('d.i32', 'fp32')).toThrow(/d\.i32.*I32/);
    expect(() => st.read('nope', 'fp32')).toThrow(ModelFormatError);
    st.close();
    expect(() => st.read('a.f32', 'fp32')).toThrow(/closed/);
  });

  it('fp32 → fp16 equals a float64 nearest-even oracle on 200k values (threaded path included)', () => {
    const n = 200_000; // above the native threading threshold
    const v = new Float32Array(n);
    let s = 12345;
    const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < n; i++) {
      const r = rnd();
      // magnitudes from subnormal half to beyond the fp16 range, both signs, plus exact ties
      const mag = 2 ** (-27 + 45 * rnd());
      v[i] = i % 7 === 0 ? halfValue(i & 0x7bff) + (halfValue((i & 0x7bff) + 1) - halfValue(i & 0x7bff)) / 2 : (r < 0.5 ? -mag : mag);
    }
    const file = writeSafetensors(path.join(dir, 'big.safetensors'), [{ name: 'w', dtype: 'F32', shape: [n], bytes: bytesOf(v) }]);
    const st = SafetensorsFile.open(file);
    const got = st.read('w', 'fp16');
    const bad: number[] = [];
    for (let i = 0; i < n && bad.length < 5; i++) if (got[i] !== nearestHalf(v[i]!)) bad.push(i);
    expect(bad.map(i => [v[i], got[i], nearestHalf(v[i]!)])).toEqual([]);
    // and back: every half decodes to its exact value
    const back = SafetensorsFile.open(writeSafetensors(path.join(dir, 'halves.safetensors'), [{ name: 'h', dtype: 'F16', shape: [0x10000], bytes: bytesOf(Uint16Array.from({ length: 0x10000 }, (_, i) => i)) }]));
    const f = back.read('h', 'fp32');
    for (let h = 0; h < 0x10000; h++) {
      const want = halfValue(h);
      if (!(Number.isNaN(want) ? Number.isNaN(f[h]!) : Object.is(f[h], want))) throw new Error(`half ${h}: ${f[h]} != ${want}`);
    }
    st.close();
    back.close();
  });

  it('corrupted or truncated files are ModelFormatErrors naming the file, never out-of-bounds reads', () => {
    const good = writeSafetensors(path.join(dir, 'good.safetensors'), [
      { name: 'x', dtype: 'F32', shape: [4], bytes: bytesOf(Float32Array.from([1, 2, 3, 4])) },
      { name: 'y', dtype: 'F16', shape: [2], bytes: bytesOf(Uint16Array.from([1, 2])) },
    ]);
    const bytes = fs.readFileSync(good);
    const cases: [string, Buffer | string, RegExp][] = [];
    const variant = (name: string, b: Buffer, re: RegExp) => cases.push([name, b, re]);
    variant('truncated data', bytes.subarray(0, bytes.length - 3), /truncated.*'y'/);
    variant('truncated header', bytes.subarray(0, 20), /truncated: the header needs/);
    variant('too short', bytes.subarray(0, 5), /shorter than the 8-byte header length/);
    const hugeLen = Buffer.from(bytes); hugeLen.writeBigUInt64LE(1n << 40n, 0);
    variant('absurd header length', hugeLen, /exceeds the 100 MiB limit/);
    const mk = (header: object | string, data: number) => {
      const p = path.join(dir, 'tmp.safetensors');
      writeSafetensors(p, [], { header: typeof header === 'string' ? header : JSON.stringify(header) });
      return Buffer.concat([fs.readFileSync(p), Buffer.alloc(data)]);
    };
    variant('offset past the end', mk({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 12), /truncated.*'x'/);
    variant('shape/offset mismatch', mk({ x: { dtype: 'F32', shape: [5], data_offsets: [0, 16] } }, 16), /span 16 bytes.*needs 20/);
    variant('end < begin', mk({ x: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, 16), /end 4 < begin 8/);
    variant('overlap', mk({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), /overlaps/);
    variant('hole', mk({ x: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /hole/);
    variant('unknown dtype', mk({ x: { dtype: 'F12', shape: [1], data_offsets: [0, 4] } }, 4), /unknown dtype 'F12'/);
    variant('negative shape', mk({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /non-negative integers/);
    variant('huge shape', mk({ x: { dtype: 'F32', shape: [4294967296, 4294967296], data_offsets: [0, 4] } }, 4), /too large/);
    variant('bad JSON', mk('{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]', 4), /invalid safetensors header/);
    variant('deep JSON', mk(`{"__metadata__": ${'['.repeat(5000)}`, 0), /nesting too deep/);
    variant('not an object', mk('[1, 2]', 0), /not a JSON object/);
    variant('missing offsets', mk({ x: { dtype: 'F32', shape: [1] } }, 4), /data_offsets must be/);
    variant('trailing data', mk({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 8), /has 8 bytes but the tensors cover 4/);
    for (const [name, b, re] of cases) {
      const p = path.join(dir, `bad-${name.replace(/\W+/g, '-')}.safetensors`);
      fs.writeFileSync(p, b as Buffer);
      let err: unknown;
      try { SafetensorsFile.open(p); } catch (e) { err = e; }
      expect(err, name).toBeInstanceOf(ModelFormatError);
      expect((err as Error).message, name).toMatch(re);
      expect((err as Error).message, name).toContain(p);
    }
    expect(() => SafetensorsFile.open(path.join(dir, 'missing.safetensors'))).toThrow(/missing\.safetensors/);
  });
});

describe('WeightStore', () => {
  const f32 = (...v: number[]) => bytesOf(Float32Array.from(v));
  it('reads a sharded component through its index and tracks unused weights', () => {
    const comp = fs.mkdtempSync(path.join(dir, 'sharded-'));
    writeSafetensors(path.join(comp, 'diffusion_pytorch_model-00001-of-00002.safetensors'), [{ name: 'a.weight', dtype: 'F32', shape: [2], bytes: f32(1, 2) }]);
    writeSafetensors(path.join(comp, 'diffusion_pytorch_model-00002-of-00002.safetensors'), [
      { name: 'b.weight', dtype: 'F32', shape: [1, 3], bytes: f32(3, 4, 5) }, { name: 'b.bias', dtype: 'F32', shape: [1], bytes: f32(6) },
    ]);
    // a variant file beside it must not be picked up
    writeSafetensors(path.join(comp, 'diffusion_pytorch_model.fp16.safetensors'), [{ name: 'a.weight', dtype: 'F16', shape: [1], bytes: bytesOf(Uint16Array.from([0x3c00])) }]);
    fs.writeFileSync(path.join(comp, 'diffusion_pytorch_model.safetensors.index.json'), JSON.stringify({
      metadata: { total_size: 24 },
      weight_map: { 'a.weight': 'diffusion_pytorch_model-00001-of-00002.safetensors', 'b.weight': 'diffusion_pytorch_model-00002-of-00002.safetensors', 'b.bias': 'diffusion_pytorch_model-00002-of-00002.safetensors' },
    }));
    const store = WeightStore.openDir(comp);
    expect(store.names()).toEqual(['a.weight', 'b.bias', 'b.weight']);
    expect(store.shape('b.weight')).toEqual([1, 3]);
    expect(store.has('c')).toBe(false);
    expect(Array.from(store.read('b.weight', 'fp32'))).toEqual([3, 4, 5]);
    store.skip('b.bias');
    expect(store.unusedNames()).toEqual(['a.weight']);
    expect(() => store.read('c.weight', 'fp32')).toThrow(/missing weight 'c\.weight'/);
    store.close();

    const v = WeightStore.openDir(comp, { variant: 'fp16' });
    expect(Array.from(v.read('a.weight', 'fp32'))).toEqual([1]);
    v.close();

    // a sharded variant: `<name>.safetensors.index.<variant>.json` naming `<name>.<variant>-0000N-of-0000M` shards
    const sv = fs.mkdtempSync(path.join(dir, 'sharded-variant-'));
    writeSafetensors(path.join(sv, 'model.bf16-00001-of-00001.safetensors'), [{ name: 'w', dtype: 'BF16', shape: [1], bytes: bytesOf(Uint16Array.from([0x4000])) }]);
    fs.writeFileSync(path.join(sv, 'model.safetensors.index.bf16.json'), JSON.stringify({ weight_map: { w: 'model.bf16-00001-of-00001.safetensors' } }));
    const s2 = WeightStore.openDir(sv, { variant: 'bf16' });
    expect(Array.from(s2.read('w', 'fp32'))).toEqual([2]);
    s2.close();
    expect(() => WeightStore.openDir(sv)).toThrow(/no \*\.safetensors weights/);
  });

  it('rejects inconsistent folders', () => {
    const comp = fs.mkdtempSync(path.join(dir, 'dup-'));
    writeSafetensors(path.join(comp, 'a.safetensors'), [{ name: 'w', dtype: 'F32', shape: [1], bytes: f32(1) }]);
    writeSafetensors(path.join(comp, 'b.safetensors'), [{ name: 'w', dtype: 'F32', shape: [1], bytes: f32(2) }]);
    expect(() => WeightStore.openDir(comp)).toThrow(/'w' is in both a\.safetensors and b\.safetensors/);
    fs.writeFileSync(path.join(comp, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { w: 'a.safetensors', v: 'a.safetensors' } }));
    expect(() => WeightStore.openDir(comp)).toThrow(/weight_map puts 'v' in a\.safetensors/);
    const empty = fs.mkdtempSync(path.join(dir, 'empty-'));
    expect(() => WeightStore.openDir(empty)).toThrow(ModelFormatError);
  });
});
