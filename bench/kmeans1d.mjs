// Micro-benchmark (not a test): exact 1-D k-means palettization (fp16 histogram + optimal DP) vs a
// straightforward k-means++ + Lloyd baseline, single thread, on a ~10 M-element fp16 tensor.
//   node bench/kmeans1d.mjs [elements=10000000] [nbits=4]
// Prints ms, speed ratio (baseline / exact) and error ratio (baseline SSE / exact SSE, >= 1 since
// the DP is optimal). Then times the exact gs16 run on all threads and extrapolates to the 2.6 B
// weights of the SDXL UNet.
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addon = process.env.COREML_OPTIMIZE_ADDON
  ? require(path.resolve(process.env.COREML_OPTIMIZE_ADDON))
  : require('node-gyp-build')(root);

const elements = Number(process.argv[2] ?? 10_000_000);
const nbits = Number(process.argv[3] ?? 4);
const k = 1 << nbits;
const cols = 4096;
const rows = Math.floor(elements / cols / 16) * 16;
const n = rows * cols;

// fp16 helpers (plain JS, independent of the addon).
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toHalf(v) {
  f32[0] = v;
  const u = u32[0];
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
  return sign | ((abs + 0xfff + ((abs >>> 13) & 1) - 0x38000000) >>> 13);
}
const halfTable = new Float32Array(65536);
for (let h = 0; h < 65536; h++) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  halfTable[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
}

// Weights like a trained layer: Gaussian per row with varying scale, a few outliers.
let seed = 12345;
const rand = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) + 0.5) / 4294967296;
const bits = new Uint16Array(n);
for (let r = 0; r < rows; r++) {
  const sigma = 0.01 + 0.03 * rand();
  for (let c = 0; c < cols; c++) {
    let g = Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand());
    if (rand() < 1e-4) g *= 8;
    bits[r * cols + c] = toHalf(g * sigma);
  }
}
const values = new Float32Array(n);
for (let i = 0; i < n; i++) values[i] = halfTable[bits[i]];

const now = () => performance.now();
function baseline(offset, count) {
  const pts = values.subarray(offset, offset + count);
  const r = addon.vectorKmeans(pts, 1, k, 0, 1);
  const lut = Array.from(r.centers, (c) => halfTable[toHalf(c)]);
  let sse = 0;
  for (let i = 0; i < count; i++) {
    const d = pts[i] - lut[r.assignments[i]];
    sse += d * d;
  }
  return { sse, iterations: r.iterations };
}

async function exact(granularity, groupSize, threads) {
  const t0 = now();
  const r = await addon.palettizeTensor({ data: bits, shape: [rows, cols], mode: 'kmeans', nbits, granularity, groupSize, channelAxis: 0, threads });
  return { ms: now() - t0, sse: r.sse, signal: r.signal };
}

console.log(`coreml-optimize kmeans1d bench: ${n.toLocaleString()} fp16 weights [${rows}, ${cols}], ${nbits}-bit, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'})`);
addon.setThreads(1);
const rows_ = [];
for (const [label, granularity, gs] of [['per-tensor', 'per_tensor', 0], ['gs16', 'per_grouped_channel', 16]]) {
  const e = await exact(granularity, gs, 1);
  const t0 = now();
  let sse = 0, iters = 0;
  const groupElems = gs ? gs * cols : n;
  for (let off = 0; off < n; off += groupElems) {
    const b = baseline(off, groupElems);
    sse += b.sse;
    iters += b.iterations;
  }
  const bms = now() - t0;
  const sqnr = (x) => (10 * Math.log10(e.signal / x)).toFixed(2);
  rows_.push({ label, exactMs: e.ms, baseMs: bms });
  console.log(
    `${label.padEnd(10)} exact ${e.ms.toFixed(0).padStart(7)} ms (SQNR ${sqnr(e.sse)} dB) | Lloyd k-means++ ${bms.toFixed(0).padStart(7)} ms ` +
      `(SQNR ${sqnr(sse)} dB, ${iters} iterations) | speed ×${(bms / e.ms).toFixed(2)} | error ratio ${(sse / e.sse).toFixed(4)}`,
  );
}
addon.setThreads(0);
const threads = addon.getThreads();
const all = await exact('per_grouped_channel', 16, 0);
const single = rows_.find((r) => r.label === 'gs16');
const coreNsPerWeight = (single.exactMs * 1e6) / n; // single-thread cost per weight
console.log(
  `gs16 exact on ${threads} threads: ${all.ms.toFixed(0)} ms (${((single.exactMs / all.ms)).toFixed(2)}× the 1-thread time). ` +
    `Single-thread cost ${coreNsPerWeight.toFixed(1)} ns/weight -> SDXL UNet 4-bit gs16 (2.6 B weights): ` +
    `~${((coreNsPerWeight * 2.6e9) / 1e9 / 2).toFixed(0)} s on 2 cores, ~${((coreNsPerWeight * 2.6e9) / 1e9 / 8).toFixed(0)} s on 8 ` +
    `(groups are independent; assumes linear scaling and this machine's per-core speed)`,
);
