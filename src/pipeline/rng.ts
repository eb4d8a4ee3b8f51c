/**
 * NumPy's legacy random generator (`np.random.seed` / `RandomState`): MT19937 seeded with `init_genrand`
 * (numpy's `_legacy_seeding` calls `mt19937_seed` for an integer seed; `init_by_array` is only for arrays),
 * 53-bit `random_sample`, and `randn` by the polar Box–Muller method that caches its second value (its log is
 * evaluated correctly rounded, as glibc's log under numpy is in all but ~0.1% of cases).
 * Used for apple/ml-stable-diffusion's initial latents: `np.random.seed(s); np.random.randn(*shape).astype(float16)`.
 */
import { ConfigError } from '../errors.js';

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

export class NumpyRandomState {
  private readonly mt = new Uint32Array(N);
  private index = N;
  private hasGauss = false;
  private gauss = 0;

  /** `seed`: an integer in [0, 2^32 − 1], as `np.random.seed` accepts. */
  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new ConfigError(`seed must be an integer between 0 and 2**32 - 1, got ${seed}`);
    }
    // init_genrand: s[i] = 1812433253 * (s[i-1] ^ (s[i-1] >>> 30)) + i (mod 2^32)
    this.mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = this.mt[i - 1]! ^ (this.mt[i - 1]! >>> 30);
      this.mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.index = N;
  }

  private twist(): void {
    const mt = this.mt;
    for (let k = 0; k < N; k++) {
      const y = (mt[k]! & UPPER_MASK) | (mt[(k + 1) % N]! & LOWER_MASK);
      mt[k] = mt[(k + M) % N]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.index = 0;
  }

  /** Next raw 32-bit output (tempered). */
  nextUint32(): number {
    if (this.index >= N) this.twist();
    let y = this.mt[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A double in [0, 1) from 53 random bits: (a >> 5, b >> 6) as numpy's `random_sample`. */
  nextDouble(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }

  /** One standard normal: legacy polar Box–Muller; returns f·x2 and keeps f·x1 for the next call. */
  nextGauss(): number {
    if (this.hasGauss) {
      this.hasGauss = false;
      const g = this.gauss;
      this.gauss = 0;
      return g;
    }
    let x1: number;
    let x2: number;
    let r2: number;
    do {
      x1 = 2.0 * this.nextDouble() - 1.0;
      x2 = 2.0 * this.nextDouble() - 1.0;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 === 0.0);
    const f = Math.sqrt((-2.0 * correctlyRoundedLog(r2)) / r2);
    this.gauss = f * x1;
    this.hasGauss = true;
    return f * x2;
  }

  /** `random_sample(n)`. */
  randomSample(n: number): Float64Array {
    const out = new Float64Array(checkCount(n));
    for (let i = 0; i < out.length; i++) out[i] = this.nextDouble();
    return out;
  }

  /** `randn(n)` (any shape: numpy fills C order, so pass the element count). */
  randn(n: number): Float64Array {
    const out = new Float64Array(checkCount(n));
    for (let i = 0; i < out.length; i++) out[i] = this.nextGauss();
    return out;
  }
}

// ---- natural log, correctly rounded ----
// numpy calls the C library's log; glibc's is correctly rounded in all but ~0.1% of cases, V8's Math.log is not
// (it differs from glibc in ~3% of numpy's gaussians by 1 ulp). Evaluating log in double-double and rounding once
// matches glibc wherever glibc is correctly rounded.

const SPLITTER = 134217729; // 2^27 + 1, Dekker's split

function twoSum(a: number, b: number): [number, number] {
  const s = a + b;
  const bb = s - a;
  return [s, (a - (s - bb)) + (b - bb)];
}

function twoProd(a: number, b: number): [number, number] {
  const p = a * b;
  let t = SPLITTER * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLITTER * b;
  const bh = t - (t - b);
  const bl = b - bh;
  return [p, ((ah * bh - p) + ah * bl + al * bh) + al * bl];
}

function ddAdd(ah: number, al: number, bh: number, bl: number): [number, number] {
  const [s, e] = twoSum(ah, bh);
  const [h, l] = twoSum(s, e + al + bl);
  return [h, l];
}

function ddMul(ah: number, al: number, bh: number, bl: number): [number, number] {
  const [p, e] = twoProd(ah, bh);
  return twoSum(p, e + ah * bl + al * bh);
}

function ddDiv(ah: number, al: number, bh: number, bl: number): [number, number] {
  const q1 = ah / bh;
  const [ph, pl] = ddMul(q1, 0, bh, bl);
  const [rh, rl] = ddAdd(ah, al, -ph, -pl);
  const q2 = (rh + rl) / bh;
  return twoSum(q1, q2);
}

// 1/(2j+1) for j = 1…24 as double-double pairs.
const ATANH_COEFFS: [number, number][] = Array.from({ length: 24 }, (_, i) => ddDiv(1, 0, 2 * (i + 1) + 1, 0));

const LN2_HI = 0.6931471805599453;
const LN2_LO = 2.3190468138462996e-17;
const LOG_SCRATCH = new DataView(new ArrayBuffer(8));

/**
 * ln(x) for a positive finite normal x, correctly rounded (double-double evaluation of
 * k·ln2 + 2·atanh((m − 1)/(m + 1)), m ∈ [√½, √2)). Other inputs fall back to Math.log.
 */
export function correctlyRoundedLog(x: number): number {
  if (!(x >= 2.2250738585072014e-308) || x === Infinity) return Math.log(x);
  LOG_SCRATCH.setFloat64(0, x);
  const hiWord = LOG_SCRATCH.getUint32(0);
  let k = (hiWord >>> 20) - 1023;
  LOG_SCRATCH.setUint32(0, (hiWord & 0x000fffff) | 0x3ff00000);
  let m = LOG_SCRATCH.getFloat64(0); // x = m · 2^k, m ∈ [1, 2)
  if (m > Math.SQRT2) {
    m /= 2;
    k += 1;
  }
  const f = m - 1; // exact (Sterbenz)
  const [dh, dl] = twoSum(2, f);
  const [sh, sl] = ddDiv(f, 0, dh, dl); // s = f / (2 + f)
  const [s2h, s2l] = ddMul(sh, sl, sh, sl);
  // atanh(s)/s − 1 = Σ_{j≥1} s^{2j}/(2j+1), Horner in double-double; s² ≤ 0.0295, so 2^-110 needs ≤ 22 terms.
  const terms = s2h === 0 ? 0 : Math.min(24, Math.ceil((110 * Math.LN2) / -Math.log(s2h)));
  let ph = 0;
  let pl = 0;
  for (let j = terms; j >= 1; j--) {
    const [ch, cl] = ATANH_COEFFS[j - 1]!;
    [ph, pl] = ddMul(ph, pl, s2h, s2l);
    [ph, pl] = ddAdd(ph, pl, ch, cl);
  }
  [ph, pl] = ddMul(ph, pl, s2h, s2l); // Σ s^{2j}/(2j+1)
  [ph, pl] = ddAdd(1, 0, ph, pl);
  const [lh, ll] = ddMul(2 * sh, 2 * sl, ph, pl); // ln m = 2 atanh(s)
  const [kh, kl] = ddMul(k, 0, LN2_HI, LN2_LO);
  const [rh, rl] = ddAdd(kh, kl, lh, ll);
  return rh + rl;
}

function checkCount(n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`sample count must be a non-negative integer, got ${n}`);
  return n;
}

/**
 * Rounds a double to the nearest IEEE half (round half to even), directly from float64 as numpy's
 * `astype(np.float16)` does (no detour through float32, which could round twice). Returns the half's value.
 */
export function roundToFloat16(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a === 0 || a === Infinity) return x;
  if (a >= 65520) return x > 0 ? Infinity : -Infinity; // halfway between 65504 and 2^16 rounds to even = inf
  // ulp of the half grid at |x|: 2^(e-10) for normals (e = floor(log2 a) ≥ -14), 2^-24 for subnormals.
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, -14) - 10);
  const q = a / ulp; // exact: division by a power of two
  const fl = Math.floor(q);
  const diff = q - fl;
  const r = diff > 0.5 || (diff === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  const v = r * ulp;
  return x < 0 ? -v : v;
}

/** `np.random.seed(seed); np.random.randn(*shape).astype(np.float16)`, widened to float32 (exact). */
export function randnFloat16(seed: number, shape: readonly number[]): Float32Array {
  const count = shape.reduce((n, d) => n * checkCount(d), 1);
  const normals = new NumpyRandomState(seed).randn(count);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = roundToFloat16(normals[i]!);
  return out;
}

/**
 * apple/ml-stable-diffusion's initial latents: `np.random.seed(seed); randn(*shape).astype(np.float16) *
 * init_noise_sigma`, with NumPy's casting: a float16 array times a Python float stays float16 (legacy value-based
 * casting and NEP 50 agree), so the ufunc runs its half loop: the scalar is first cast to half, each product is
 * computed in float32 and rounded back to half. Checked against numpy 2.4: for sigma 7.439362 this differs from a
 * float32-sigma product in about a third of the elements, so the order matters. With sigma = 1 (PNDM, DDIM,
 * DPM-Solver) this is just the rounded normals.
 * diffusers' own pipeline (the reference fixtures) instead multiplies the float32-widened normals by sigma in
 * float32 without rounding: use `randnFloat16` and multiply in float32 to match it.
 */
export function initialLatents(seed: number, shape: readonly number[], initNoiseSigma: number): Float32Array {
  if (!Number.isFinite(initNoiseSigma)) throw new ConfigError(`init_noise_sigma must be finite, got ${initNoiseSigma}`);
  const x = randnFloat16(seed, shape);
  if (initNoiseSigma === 1) return x;
  const sigma = roundToFloat16(initNoiseSigma);
  for (let i = 0; i < x.length; i++) x[i] = roundToFloat16(Math.fround(x[i]! * sigma));
  return x;
}
