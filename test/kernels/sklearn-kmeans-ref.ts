/**
 * Test oracle: scikit-learn's KMeans(n_clusters, init="k-means++", n_init=1, tol, random_state)
 * as coremltools calls it for vector palettization, in plain float64 JavaScript: numpy's legacy
 * RandomState (MT19937), scikit-learn 1.2's greedy k-means++ and Lloyd (stop on repeated labels or
 * total squared center shift <= tol · mean feature variance, then relabel). Slow and simple; an
 * empty cluster keeps its center (scikit-learn moves it to a far point; k-means++ rarely leaves one).
 */

/** numpy.random.RandomState(seed): the draws k-means++ makes. */
export class NumpyRandomState {
  private readonly mt = new Uint32Array(624);
  private pos = 624;
  constructor(seed: number) {
    this.mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const p = this.mt[i - 1]!;
      this.mt[i] = (Math.imul(1812433253, (p ^ (p >>> 30)) >>> 0) + i) >>> 0;
    }
  }
  nextU32(): number {
    if (this.pos >= 624) {
      for (let i = 0; i < 624; i++) {
        const y = ((this.mt[i]! & 0x80000000) | (this.mt[(i + 1) % 624]! & 0x7fffffff)) >>> 0;
        this.mt[i] = (this.mt[(i + 397) % 624]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0)) >>> 0;
      }
      this.pos = 0;
    }
    let y = this.mt[this.pos++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    return (y ^ (y >>> 18)) >>> 0;
  }
  randomSample(): number {
    const a = this.nextU32() >>> 5, b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }
  randint(high: number): number {
    const rng = high - 1;
    if (rng <= 0) return 0;
    let mask = rng;
    for (const s of [1, 2, 4, 8, 16]) mask |= mask >>> s;
    for (;;) {
      const v = (this.nextU32() & mask) >>> 0;
      if (v <= rng) return v;
    }
  }
}

export interface KmeansRef { centers: Float64Array; labels: Int32Array; inertia: number }

/** points: n × dim row-major. */
export function sklearnKmeans(points: ArrayLike<number>, dim: number, k: number, randomState = 0, tol = 1e-2, maxIter = 300): KmeansRef {
  const n = points.length / dim;
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) mean[d]! += points[i * dim + d]!;
  for (let d = 0; d < dim; d++) mean[d]! /= n;
  const x = new Float64Array(n * dim);
  let varSum = 0;
  for (let d = 0; d < dim; d++) {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const t = points[i * dim + d]! - mean[d]!;
      x[i * dim + d] = t;
      v += t * t;
    }
    varSum += v / n;
  }
  const tolAbs = (varSum / dim) * tol;
  const sq = (a: number, b: number) => {
    let s = 0;
    for (let d = 0; d < dim; d++) s += (x[a * dim + d]! - x[b * dim + d]!) ** 2;
    return s;
  };
  // k-means++ (greedy, 2 + floor(ln k) candidates per center).
  const rs = new NumpyRandomState(randomState);
  const centers = new Float64Array(k * dim);
  const first = rs.randint(n);
  centers.set(x.subarray(first * dim, first * dim + dim), 0);
  let closest: Float64Array = Float64Array.from({ length: n }, (_, i) => sq(first, i));
  let pot = closest.reduce((a, b) => a + b, 0);
  const trials = 2 + Math.floor(Math.log(k));
  const cum = new Float64Array(n);
  for (let c = 1; c < k; c++) {
    let acc = 0;
    for (let i = 0; i < n; i++) cum[i] = acc += closest[i]!;
    let best: { pot: number; id: number; d: Float64Array } | undefined;
    for (let t = 0; t < trials; t++) {
      const v = rs.randomSample() * pot;
      let lo = 0, hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cum[mid]! < v) lo = mid + 1;
        else hi = mid;
      }
      const id = Math.min(lo, n - 1);
      const d = Float64Array.from(closest, (cd, i) => Math.min(cd, sq(id, i)));
      const p = d.reduce((a, b) => a + b, 0);
      if (!best || p < best.pot) best = { pot: p, id, d };
    }
    pot = best!.pot;
    closest = best!.d;
    centers.set(x.subarray(best!.id * dim, best!.id * dim + dim), c * dim);
  }
  // Lloyd.
  const labels = new Int32Array(n);
  let old = new Int32Array(n).fill(-1);
  const label = () => {
    for (let i = 0; i < n; i++) {
      let bd = Infinity, bl = 0;
      for (let c = 0; c < k; c++) {
        let s = 0;
        for (let d = 0; d < dim; d++) s += (x[i * dim + d]! - centers[c * dim + d]!) ** 2;
        if (s < bd) {
          bd = s;
          bl = c;
        }
      }
      labels[i] = bl;
    }
  };
  let strict = false;
  for (let it = 0; it < maxIter; it++) {
    label();
    const sum = new Float64Array(k * dim), cnt = new Float64Array(k);
    for (let i = 0; i < n; i++) {
      cnt[labels[i]!]! += 1;
      for (let d = 0; d < dim; d++) sum[labels[i]! * dim + d]! += x[i * dim + d]!;
    }
    let shift = 0;
    for (let c = 0; c < k; c++) {
      for (let d = 0; d < dim; d++) {
        const nv = cnt[c]! > 0 ? sum[c * dim + d]! / cnt[c]! : centers[c * dim + d]!;
        shift += (nv - centers[c * dim + d]!) ** 2;
        centers[c * dim + d] = nv;
      }
    }
    if (labels.every((l, i) => l === old[i])) {
      strict = true;
      break;
    }
    if (shift <= tolAbs) break;
    old = labels.slice();
  }
  if (!strict) label();
  let inertia = 0;
  for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) inertia += (x[i * dim + d]! - centers[labels[i]! * dim + d]!) ** 2;
  for (let c = 0; c < k; c++) for (let d = 0; d < dim; d++) centers[c * dim + d]! += mean[d]!;
  return { centers, labels, inertia };
}
