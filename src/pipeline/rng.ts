/**
 * NumPy's legacy random generator (`np.random.seed` / `RandomState`): MT19937 seeded with `init_genrand`
 * (numpy's `_legacy_seeding` calls `mt19937_seed` for an integer seed; `init_by_array` is only for arrays),
 * 53-bit `random_sample`, and `randn` by the polar Box–Muller method that caches its second value.
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
    const f = Math.sqrt((-2.0 * Math.log(r2)) / r2);
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
