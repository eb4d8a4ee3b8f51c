/**
 * The baseline palettizer for bench/palettize.mjs: straightforward Lloyd k-means with k-means++
 * initialisation, one group at a time, single-threaded plain JS. Grouping follows coremltools'
 * per_grouped_channel (group_size consecutive output channels on axis 0 per LUT) or per_tensor
 * (one LUT). The LUT is rounded to fp16 as the stored one is, and the error is measured against
 * that, so its SSE is comparable with the `sse` of our native path.
 */

/** Small deterministic PRNG (mulberry32) so a run is reproducible. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** k-means++: first centre uniform, each next one drawn with probability ∝ squared distance. */
function kmeansPlusPlus(x, k, random) {
  const n = x.length;
  const centres = new Float64Array(k);
  const d2 = new Float64Array(n);
  centres[0] = x[Math.floor(random() * n)];
  let total = 0;
  for (let i = 0; i < n; i++) { const d = x[i] - centres[0]; d2[i] = d * d; total += d2[i]; }
  let c = 1;
  for (; c < k && total > 0; c++) {
    let r = random() * total;
    let pick = n - 1;
    for (let i = 0; i < n; i++) { r -= d2[i]; if (r <= 0) { pick = i; break; } }
    centres[c] = x[pick];
    total = 0;
    for (let i = 0; i < n; i++) {
      const d = x[i] - centres[c];
      if (d * d < d2[i]) d2[i] = d * d;
      total += d2[i];
    }
  }
  for (; c < k; c++) centres[c] = centres[0]; // fewer distinct values than k
  return centres;
}

function nearest(v, centres) {
  let best = 0, bestD = Infinity;
  for (let j = 0; j < centres.length; j++) {
    const d = (v - centres[j]) * (v - centres[j]);
    if (d < bestD) { bestD = d; best = j; }
  }
  return best;
}

/** Lloyd iterations until no assignment changes (or maxIter). Returns the centres. */
export function lloydKmeans(x, k, { seed = 0, maxIter = 100 } = {}) {
  const random = rng(seed);
  const centres = kmeansPlusPlus(x, k, random);
  const assign = new Int32Array(x.length).fill(-1);
  const sum = new Float64Array(k);
  const cnt = new Float64Array(k);
  let iterations = 0;
  for (; iterations < maxIter; iterations++) {
    let changed = 0;
    for (let i = 0; i < x.length; i++) {
      const a = nearest(x[i], centres);
      if (a !== assign[i]) { assign[i] = a; changed++; }
    }
    if (changed === 0) break;
    sum.fill(0); cnt.fill(0);
    for (let i = 0; i < x.length; i++) { sum[assign[i]] += x[i]; cnt[assign[i]]++; }
    for (let j = 0; j < k; j++) if (cnt[j] > 0) centres[j] = sum[j] / cnt[j]; // empty cluster: keep its centre
  }
  return { centres, iterations };
}

/**
 * Palettizes one weight (float values, row-major, output channels on axis 0). `toFp16` rounds a
 * float to the nearest fp16 value (the LUT's storage). Returns { sse, signal, groups, iterations }.
 */
export function baselinePalettize(values, shape, { nbits, groupSize = 0, seed = 0, toFp16 }) {
  const k = 2 ** nbits;
  const rows = shape[0];
  const rowLen = values.length / rows;
  const perGroup = groupSize > 0 ? Math.min(groupSize, rows) : rows;
  let sse = 0, signal = 0, groups = 0, iterations = 0;
  for (let r0 = 0; r0 < rows; r0 += perGroup) {
    const x = values.subarray(r0 * rowLen, Math.min(rows, r0 + perGroup) * rowLen);
    const { centres, iterations: it } = lloydKmeans(x, k, { seed: seed + groups, maxIter: 100 });
    const lut = Float64Array.from(centres, toFp16);
    for (let i = 0; i < x.length; i++) {
      const q = lut[nearest(x[i], lut)];
      sse += (x[i] - q) * (x[i] - q);
      signal += x[i] * x[i];
    }
    groups++;
    iterations += it;
  }
  return { sse, signal, groups, iterations };
}
