import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AbortError, ConfigError } from '../../src/index.js';
import { decompressLut, kmeans1d, palettizeTensor } from '../../src/kernels/index.js';
import { halfBitsToFloat, floatToHalfBits } from '../../src/mil/values.js';
import { sklearnKmeans } from './sklearn-kmeans-ref.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const golden = path.resolve(root, '../shared/fixtures/coremltools-golden');

// ---- helpers (independent of the native code) --------------------------------------------------

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function floatToHalf(v: number): number {
  // Exact enough for test data generation: search the nearest fp16 (ties to even) via Float32 rounding.
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const abs = u & 0x7fffffff;
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs < 0x38800000) {
    if (abs < 0x33000000) return sign;
    const mant = (abs & 0x7fffff) | 0x800000;
    const shift = 126 - (abs >>> 23);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  const r = abs + 0xfff + ((abs >>> 13) & 1);
  return sign | ((r - 0x38000000) >>> 13);
}

function sha256F32(values: ArrayLike<number>): string {
  return createHash('sha256').update(new Uint8Array(Float32Array.from(values).buffer)).digest('hex');
}
function sha256I32(values: ArrayLike<number>): string {
  return createHash('sha256').update(new Uint8Array(Int32Array.from(values).buffer)).digest('hex');
}
function lutAsF32(lut: Uint16Array | Float32Array): number[] {
  return lut instanceof Uint16Array ? Array.from(lut, halfToFloat) : Array.from(lut);
}

function gaussianF16(n: number, seed: number, sigma = 0.02): Uint16Array {
  let s = seed >>> 0;
  const rand = () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const g = Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand());
    out[i] = floatToHalf(g * sigma);
  }
  return out;
}

// Independent O(k·n²) DP over sorted distinct values (plain JS, two-pass segment costs).
function bruteForceCost(values: number[], counts: number[], k: number): number {
  const n = values.length;
  k = Math.min(k, n);
  const seg = (a: number, b: number) => {
    let w = 0, s = 0;
    for (let i = a; i <= b; i++) { w += counts[i]!; s += counts[i]! * values[i]!; }
    const mu = s / w;
    let c = 0;
    for (let i = a; i <= b; i++) c += counts[i]! * (values[i]! - mu) ** 2;
    return c;
  };
  let prev = Array.from({ length: n }, (_, i) => seg(0, i));
  for (let m = 1; m < k; m++) {
    const cur = new Array<number>(n).fill(Infinity);
    for (let i = m; i < n; i++) for (let j = m; j <= i; j++) cur[i] = Math.min(cur[i]!, prev[j - 1]! + seg(j, i));
    prev = cur;
  }
  return prev[n - 1]!;
}

// ---- kmeans1d --------------------------------------------------------------------------------

describe('kmeans1d', () => {
  it('reproduces the spec known answer (§8.6)', () => {
    const r = kmeans1d(new Float64Array([1, 2, 3, 10, 11, 12]), 2);
    expect(Array.from(r.centroids)).toEqual([2, 11]);
    expect(Array.from(r.assignments)).toEqual([0, 0, 0, 1, 1, 1]);
    expect(r.cost).toBeCloseTo(4, 12);
  });

  it('is optimal: equals a brute-force DP and the native reference on random weighted inputs', () => {
    let s = 99;
    const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296);
    for (let trial = 0; trial < 60; trial++) {
      const n = 1 + Math.floor(rand() * 18);
      const set = new Set<number>();
      while (set.size < n) set.add(Math.round((rand() - 0.5) * 1000) / 10);
      const values = [...set].sort((a, b) => a - b);
      const counts = values.map(() => 1 + Math.floor(rand() * 50));
      for (let k = 1; k <= n; k++) {
        const fast = kmeans1d(Float64Array.from(values), k, { counts: Float64Array.from(counts) });
        const ref = kmeans1d(Float64Array.from(values), k, { counts: Float64Array.from(counts), reference: true });
        expect(Array.from(fast.assignments)).toEqual(Array.from(ref.assignments));
        expect(Array.from(fast.centroids)).toEqual(Array.from(ref.centroids));
        const brute = bruteForceCost(values, counts, k);
        expect(Math.abs(fast.cost - brute)).toBeLessThanOrEqual(1e-9 * (1 + brute));
      }
    }
  });

  it('treats duplicates, ±0 and k > distinct exactly; rejects NaN/Inf with a named error', () => {
    const r = kmeans1d(new Float32Array([0, -0, 3, 3, 3]), 8);
    expect(Array.from(r.centroids)).toEqual([0, 3]);
    expect(Array.from(r.assignments)).toEqual([0, 0, 1, 1, 1]);
    expect(() => kmeans1d(new Float64Array([1, NaN]), 2)).toThrow(/NaN/);
    expect(() => kmeans1d(new Float64Array([1, Infinity]), 2)).toThrow(/infinite/);
    expect(() => kmeans1d(new Float64Array([1, 2]), 0)).toThrow(ConfigError);
  });
});

// ---- palettizeTensor: known answers, layouts, round trips ------------------------------------

describe('palettizeTensor', () => {
  it('uniform known answer (§8.6)', async () => {
    const r = await palettizeTensor({
      data: new Float32Array([0.11, 0.19, 0.3, 0.08, 0.0, 0.02]), shape: [1, 6], mode: 'uniform', nbits: 2,
    });
    if (r.skipped) throw new Error('skipped');
    expect(Array.from(r.indices)).toEqual([1, 2, 3, 1, 0, 0]);
    expect(Array.from(r.lut).map((v) => Math.round(v * 1e6) / 1e6)).toEqual([0, 0.1, 0.2, 0.3]);
    expect(r.lutShape).toEqual([1, 1, 4, 1]);
  });

  it('unique known answers, groups of 2 along either axis (§8.6)', async () => {
    const data = Float32Array.from({ length: 16 }, (_, i) => i);
    const a0 = await palettizeTensor({ data, shape: [4, 4], mode: 'unique', granularity: 'per_grouped_channel', groupSize: 2, channelAxis: 0 });
    const a1 = await palettizeTensor({ data, shape: [4, 4], mode: 'unique', granularity: 'per_grouped_channel', groupSize: 2, channelAxis: 1 });
    if (a0.skipped || a1.skipped) throw new Error('skipped');
    expect(a0.lutShape).toEqual([2, 1, 8, 1]);
    expect(Array.from(a0.lut)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect(Array.from(a0.indices)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7]);
    expect(a1.lutShape).toEqual([1, 2, 8, 1]);
    expect(Array.from(a1.lut)).toEqual([0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15]);
    expect(Array.from(a1.indices)).toEqual([0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7]);
  });

  it('grouped layouts: gs16 linear [256,512] -> lut [16,1,16,1]; matmul y axis -1 -> [1,24,16,1]; decode round trip', async () => {
    for (const [shape, axis, lutShape] of [
      [[256, 512], 0, [16, 1, 16, 1]],
      [[256, 384], -1, [1, 24, 16, 1]],
      [[64, 32, 3, 3], 0, [4, 1, 1, 1, 16, 1]],
    ] as const) {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = gaussianF16(n, n);
      const r = await palettizeTensor({ data, shape, nbits: 4, granularity: 'per_grouped_channel', groupSize: 16, channelAxis: axis });
      if (r.skipped) throw new Error('skipped');
      expect(r.lutShape).toEqual(lutShape);
      expect(r.indicesShape).toEqual(shape);
      const dec = decompressLut(r) as Uint16Array;
      let sse = 0, sig = 0;
      for (let i = 0; i < n; i++) {
        const a = halfToFloat(data[i]!), b = halfToFloat(dec[i]!);
        sse += (a - b) ** 2;
        sig += a * a;
      }
      expect(sse).toBeCloseTo(r.sse, 10);
      expect(10 * Math.log10(sig / sse)).toBeGreaterThan(18); // 4-bit optimal LUTs on Gaussian data: ~20 dB
      // Every element decodes to an entry of its own group's LUT.
      const lut = r.lut as Uint16Array;
      const groupsAxis = axis < 0 ? shape.length + axis : axis;
      const inner = shape.slice(groupsAxis + 1).reduce((a, b) => a * b, 1);
      for (let i = 0; i < n; i += 97) {
        const ch = Math.floor(i / inner) % shape[groupsAxis]!;
        const g = Math.floor(ch / 16);
        expect(dec[i]).toBe(lut[g * 16 + r.indices[i]!]);
      }
    }
  });

  it('vector palettization is deterministic per seed and decodes along the vector axis', async () => {
    const data = gaussianF16(64 * 32, 5);
    const opts = { data, shape: [64, 32], nbits: 4, granularity: 'per_grouped_channel', groupSize: 16, clusterDim: 2, seed: 7 } as const;
    const a = await palettizeTensor(opts);
    const b = await palettizeTensor(opts);
    if (a.skipped || b.skipped) throw new Error('skipped');
    expect(a.indicesShape).toEqual([32, 32]);
    expect(a.lutShape).toEqual([4, 1, 16, 2]);
    expect(a.vectorAxis).toBe(0);
    expect(Array.from(a.lut)).toEqual(Array.from(b.lut));
    expect(Array.from(a.indices)).toEqual(Array.from(b.indices));
    const dec = decompressLut(a) as Uint16Array;
    const lut = a.lut as Uint16Array;
    for (let row = 0; row < 64; row++)
      for (let col = 0; col < 32; col++) {
        const code = a.indices[(row >> 1) * 32 + col]!;
        expect(dec[row * 32 + col]).toBe(lut[((row >> 4) * 16 + code) * 2 + (row & 1)]);
      }
  });

  it('vector k-means is never worse than coremltools\' scikit-learn run (conv [96, 48, 3, 3], cluster_dim 4)', async () => {
    const shape = [96, 48, 3, 3];
    const data = gaussianF16(96 * 48 * 9, 11, 0.05);
    const r = await palettizeTensor({ data, shape, nbits: 4, clusterDim: 4 });
    if (r.skipped) throw new Error('skipped');
    const w = Float64Array.from(data, (h) => halfBitsToFloat(h));
    const dec = decompressLut(r) as Uint16Array;
    let ours = 0;
    for (let i = 0; i < w.length; i++) ours += (halfBitsToFloat(dec[i]!) - w[i]!) ** 2;
    // coremltools' points: vector t = (c', rest…) holds channels 4c' … 4c'+3 (axis 0 per tensor).
    const inner = 48 * 9;
    const pts = new Float64Array(w.length);
    for (let cv = 0, o = 0; cv < 24; cv++) for (let rest = 0; rest < inner; rest++) for (let j = 0; j < 4; j++) pts[o++] = w[(cv * 4 + j) * inner + rest]!;
    for (const randomState of [0, 1, 2]) {
      const ref = sklearnKmeans(pts, 4, 16, randomState);
      // Its error as coremltools writes it: LUT cast to fp16, labels as they are.
      let sse = 0;
      for (let t = 0; t < ref.labels.length; t++)
        for (let j = 0; j < 4; j++) sse += (halfBitsToFloat(floatToHalfBits(ref.centers[ref.labels[t]! * 4 + j]!)) - pts[t * 4 + j]!) ** 2;
      expect(ours, `random_state ${randomState}`).toBeLessThanOrEqual(sse);
    }
  });

  it('rejects bad configs and NaN weights with clear errors; reports coremltools skips', async () => {
    await expect(palettizeTensor({ data: new Float32Array(8), shape: [2, 4], nbits: 5 })).rejects.toThrow(ConfigError);
    await expect(palettizeTensor({ data: new Float32Array(8), shape: [2, 4], mode: 'unique', nbits: 4 })).rejects.toThrow(ConfigError);
    const bad = gaussianF16(64, 1);
    bad[3] = 0x7e00;
    await expect(palettizeTensor({ data: bad, shape: [8, 8], nbits: 2 })).rejects.toThrow(/NaN/);
    const r = await palettizeTensor({ data: gaussianF16(48, 2), shape: [6, 8], nbits: 2, granularity: 'per_grouped_channel', groupSize: 4 });
    expect(r.skipped).toBe(true);
    if (r.skipped) expect(r.skipReason).toMatch(/not divisible by group_size/);
  });

  it('reports progress and honours an AbortSignal', async () => {
    const data = gaussianF16(512 * 256, 3);
    const seen: number[] = [];
    await palettizeTensor({ data, shape: [512, 256], nbits: 4, granularity: 'per_grouped_channel', groupSize: 4, onProgress: (d, t) => seen.push(d / t) });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[seen.length - 1]).toBe(1);
    const ac = new AbortController();
    ac.abort();
    await expect(palettizeTensor({ data, shape: [512, 256], nbits: 4, signal: ac.signal })).rejects.toThrow(AbortError);
    // Cancel while running: 2048 groups of 2048 values, each an exact 16-cluster DP (seconds of work).
    const big = gaussianF16(2048 * 2048, 4);
    const ac2 = new AbortController();
    const reports: [number, number][] = [];
    const p = palettizeTensor({ data: big, shape: [2048, 2048], nbits: 4, granularity: 'per_grouped_channel', groupSize: 1, signal: ac2.signal,
      onProgress: (done, total) => { reports.push([done, total]); ac2.abort(); } });
    await expect(p).rejects.toThrow(AbortError);
    // Stopped early: the job never reported completion after the abort at its first progress report.
    expect(reports.length).toBeGreaterThan(0);
    expect(reports.every(([done, total]) => done < total)).toBe(true);
  });
});

// ---- coremltools 9.0 golden files (same LUTs and indices where coremltools used kmeans1d) -----

interface SidecarInput { op_type: string; input: string; dtype?: string; shape?: number[]; sha256_f32le?: string; sha256_i32le?: string; value?: unknown }
interface SidecarWeight { name: string; shape: number[]; dtype: string; sha256_f32le: string; n_elements?: number; source_weight?: string; constexpr_inputs?: SidecarInput[] }
interface Sidecar { weights: SidecarWeight[] }

const haveGolden = existsSync(path.join(golden, 'src_a_ios18.json'));

function loadSourceWeights(pkg: string, sidecar: string, dtype: 'fp16' | 'fp32'): Map<string, { data: Uint16Array | Float32Array; shape: number[] }> {
  const bin = readFileSync(path.join(golden, pkg, 'Data/com.apple.CoreML/weights/weight.bin'));
  const dv = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  const records: { dtype: number; bytes: Buffer }[] = [];
  for (let pos = 64; pos + 64 <= bin.length; ) {
    if (dv.getUint32(pos, true) !== 0xdeadbeef) throw new Error(`bad blob sentinel at ${pos}`);
    const type = dv.getUint32(pos + 4, true);
    const size = Number(dv.getBigUint64(pos + 8, true));
    const off = Number(dv.getBigUint64(pos + 16, true));
    records.push({ dtype: type, bytes: bin.subarray(off, off + size) });
    pos = Math.ceil((off + size) / 64) * 64;
  }
  const side = JSON.parse(readFileSync(path.join(golden, sidecar), 'utf8')) as Sidecar;
  const out = new Map<string, { data: Uint16Array | Float32Array; shape: number[] }>();
  for (const rec of records) {
    const copy = Uint8Array.from(rec.bytes);
    const data = dtype === 'fp16' && rec.dtype === 1 ? new Uint16Array(copy.buffer) : dtype === 'fp32' && rec.dtype === 2 ? new Float32Array(copy.buffer) : null;
    if (!data) continue;
    const sha = sha256F32(data instanceof Uint16Array ? Array.from(data, halfToFloat) : data);
    const w = side.weights.find((x) => x.sha256_f32le === sha);
    if (w) out.set(w.name, { data, shape: w.shape });
  }
  return out;
}

// Output-channel axis by consumer (coreml-format.md §4.3): conv/linear/gather 0, matmul y −1.
const axisOf = (name: string) => (name.startsWith('mm_y') ? -1 : 0);

describe.skipIf(!haveGolden)('coremltools golden files', () => {
  const src = haveGolden ? loadSourceWeights('src_a_ios18.mlpackage', 'src_a_ios18.json', 'fp16') : new Map();
  const src32 = haveGolden ? loadSourceWeights('src_a_fp32_ios18.mlpackage', 'src_a_fp32_ios18.json', 'fp32') : new Map();

  it('finds every source weight in the blob files', () => {
    expect(src.size).toBe(13);
    expect(src32.size).toBe(13);
  });

  const kmeansCases: [string, number, number][] = [
    ['pal_n1_pertensor_ios18', 1, 0], ['pal_n2_pertensor_ios18', 2, 0], ['pal_n3_pertensor_ios18', 3, 0],
    ['pal_n4_pertensor_ios18', 4, 0], ['pal_n6_pertensor_ios18', 6, 0], ['pal_n8_pertensor_ios18', 8, 0],
    ['pal_n4_gs32_ios18', 4, 32],
  ];
  for (const [file, nbits, gs] of kmeansCases) {
    it(`${file}: identical LUT and indices wherever coremltools used kmeans1d (fp16 groups >= 10,000 elements)`, async () => {
      const side = JSON.parse(readFileSync(path.join(golden, `${file}.json`), 'utf8')) as Sidecar;
      let compared = 0;
      for (const w of side.weights) {
        const lutIn = w.constexpr_inputs?.find((c) => c.input === 'lut');
        const idxIn = w.constexpr_inputs?.find((c) => c.input === 'indices');
        if (!lutIn || !idxIn) continue;
        const srcName = w.name.replace(/_palettized$/, '');
        const s = src.get(srcName);
        if (!s) continue;
        const n = s.shape.reduce((a: number, b: number) => a * b, 1);
        const axis = axisOf(srcName);
        const channels = s.shape[axis < 0 ? s.shape.length + axis : axis]!;
        const groupElems = gs === 0 ? n : (n / channels) * gs;
        if (gs && channels % gs) continue;
        if (groupElems < 10_000) continue; // scikit-learn path in coremltools: not bit-reproducible
        const r = await palettizeTensor({
          data: s.data, shape: s.shape, nbits,
          granularity: gs ? 'per_grouped_channel' : 'per_tensor', groupSize: gs, channelAxis: axis,
        });
        if (r.skipped) throw new Error(`${srcName} skipped`);
        expect(r.lutShape, srcName).toEqual(lutIn.shape);
        expect(sha256F32(lutAsF32(r.lut)), `${file} ${srcName} lut`).toBe(lutIn.sha256_f32le);
        expect(sha256I32(r.indices), `${file} ${srcName} indices`).toBe(idxIn.sha256_i32le);
        compared++;
      }
      expect(compared).toBeGreaterThanOrEqual(gs ? 2 : 5);
    });
  }

  it.each([
    ['pal_n4_uniform_pertensor_ios18', 'fp16'],
    ['pal_n4_uniform_pertensor_fp32_ios18', 'fp32'],
  ] as const)('%s: identical uniform LUTs and indices (%s arithmetic)', async (file, dtype) => {
    const side = JSON.parse(readFileSync(path.join(golden, `${file}.json`), 'utf8')) as Sidecar;
    let compared = 0;
    for (const w of side.weights) {
      const lutIn = w.constexpr_inputs?.find((c) => c.input === 'lut');
      const idxIn = w.constexpr_inputs?.find((c) => c.input === 'indices');
      if (!lutIn || !idxIn) continue;
      const s = (dtype === 'fp16' ? src : src32).get(w.name.replace(/_palettized$/, ''))!;
      const r = await palettizeTensor({ data: s.data, shape: s.shape, mode: 'uniform', nbits: 4 });
      if (r.skipped) throw new Error('skipped');
      expect(sha256F32(lutAsF32(r.lut)), `${w.name} lut`).toBe(lutIn.sha256_f32le);
      expect(sha256I32(r.indices), `${w.name} indices`).toBe(idxIn.sha256_i32le);
      compared++;
    }
    expect(compared).toBe(7);
  });

  it('pal_unique_pertensor_ios18: unique LUT for the 16-value weight, others skipped (> 256 values)', async () => {
    const side = JSON.parse(readFileSync(path.join(golden, 'pal_unique_pertensor_ios18.json'), 'utf8')) as Sidecar;
    const w = side.weights.find((x) => x.name === 'conv2_weight_to_fp16_palettized')!;
    const s = src.get('conv2_weight_to_fp16')!;
    const r = await palettizeTensor({ data: s.data, shape: s.shape, mode: 'unique' });
    if (r.skipped) throw new Error('skipped');
    expect(r.nbits).toBe(4);
    expect(sha256F32(lutAsF32(r.lut))).toBe(w.constexpr_inputs!.find((c) => c.input === 'lut')!.sha256_f32le);
    expect(sha256I32(r.indices)).toBe(w.constexpr_inputs!.find((c) => c.input === 'indices')!.sha256_i32le);
    const fc1 = src.get('fc1_weight_to_fp16')!;
    const skipped = await palettizeTensor({ data: fc1.data, shape: fc1.shape, mode: 'unique' });
    expect(skipped.skipped).toBe(true);
  });

  it('pal_n4_pcs_pertensor_ios18: per-input-channel scale, scaled LUT and indices match', async () => {
    const side = JSON.parse(readFileSync(path.join(golden, 'pal_n4_pcs_pertensor_ios18.json'), 'utf8')) as Sidecar;
    let compared = 0;
    for (const w of side.weights) {
      if (!w.name.endsWith('_palettized_pcs')) continue;
      const srcName = w.name.replace(/_palettized_pcs$/, '');
      const s = src.get(srcName)!;
      const n = s.shape.reduce((a: number, b: number) => a * b, 1);
      if (n < 10_000) continue; // scikit-learn path
      const r = await palettizeTensor({ data: s.data, shape: s.shape, nbits: 4, channelAxis: axisOf(srcName), perChannelScale: true });
      if (r.skipped) throw new Error('skipped');
      const inputs = w.constexpr_inputs!;
      const scaleIn = inputs.find((c) => c.input === 'scale')!;
      const dataIn = inputs.find((c) => c.input === 'data')!;
      const idxIn = inputs.find((c) => c.input === 'indices')!;
      const scale = lutAsF32(r.scale!);
      expect(sha256F32(scale), `${srcName} scale`).toBe(scaleIn.sha256_f32le);
      // The file holds the per-tensor LUT repeated once per scale entry (P1 form, §4.4).
      const lut = lutAsF32(r.lut);
      const repeated: number[] = [];
      for (let i = 0; i < scale.length; i++) repeated.push(...lut);
      expect(sha256F32(repeated), `${srcName} data`).toBe(dataIn.sha256_f32le);
      expect(sha256I32(r.indices), `${srcName} indices`).toBe(idxIn.sha256_i32le);
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(5);
  });
});
