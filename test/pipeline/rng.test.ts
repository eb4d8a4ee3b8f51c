import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NumpyRandomState, correctlyRoundedLog, initialLatents, randnFloat16, roundToFloat16 } from '../../src/pipeline/rng.js';
import { ConfigError } from '../../src/errors.js';
import { readNpy } from '../../src/runtime/npy.js';

const REF = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures/pipeline-reference');
const hasFixtures = fs.existsSync(path.join(REF, 'cases'));

describe('NumpyRandomState (numpy legacy MT19937)', () => {
  it('raw MT19937 outputs for seed 5489 are the reference generator\'s (std::mt19937 default seed)', () => {
    const rs = new NumpyRandomState(5489);
    expect([0, 1, 2, 3, 4].map(() => rs.nextUint32())).toEqual([3499211612, 581869302, 3890346734, 3586334585, 545404204]);
    // The 10000th output of std::mt19937 (C++11 [rand.predef]).
    const rs2 = new NumpyRandomState(5489);
    for (let i = 0; i < 9999; i++) rs2.nextUint32();
    expect(rs2.nextUint32()).toBe(4123659995);
  });

  it('seed 12345: randn(10000)[-5:] is the vector of diffusion-pipeline.md / StableDiffusionTests.swift', () => {
    const x = new NumpyRandomState(12345).randn(10000);
    const last = Array.from(x.subarray(9995));
    const expected = [-0.86285345, 2.15229409, -0.00670556, -1.21472309, 0.65498866];
    last.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 8));
    // Bit-exact against numpy 2.4 on glibc (repr of the float64 values).
    expect(last).toEqual([-0.8628534548222186, 2.152294085787089, -0.006705556077771688, -1.2147230949662449, 0.6549886591834755]);
  });

  it('the Box–Muller log is correctly rounded (where V8\'s Math.log is 1 ulp off; answers from mpmath at 300 bits)', () => {
    const cases: [number, number][] = [
      [0.7659078564803156, -0.26669340827833937], [1.7997875898749627, 0.5876686523138867],
      [2.4074906557886107, 0.8785849833902378], [2.3125622614206733, 0.8383561138995911],
      [2.780047845731623, 1.0224681382492717], [0.41138361577937654, -0.8882291280804587],
      [0.5267175654585914, -0.6410908030230883], [2.277297354867978, 0.8229893691869113],
    ];
    for (const [x, ln] of cases) expect(correctlyRoundedLog(x)).toBe(ln);
    for (const x of [1, 2, 0.5, Math.E, 1e-300, 1.7976931348623157e308]) expect(correctlyRoundedLog(x)).toBeCloseTo(Math.log(x), 13);
    expect(correctlyRoundedLog(1)).toBe(0);
    expect(correctlyRoundedLog(0)).toBe(-Infinity);
    expect(Number.isNaN(correctlyRoundedLog(-1))).toBe(true);
  });

  it('seed 0: the well-known numpy values of randn and random_sample', () => {
    const n = new NumpyRandomState(0).randn(3);
    expect(Array.from(n)).toEqual([1.764052345967664, 0.4001572083672233, 0.9787379841057392]);
    expect(Array.from(new NumpyRandomState(0).randomSample(3))).toEqual([0.5488135039273248, 0.7151893663724195, 0.6027633760716439]);
    // random_sample is exact: 53 bits from two words, no transcendental functions.
    expect(Array.from(new NumpyRandomState(42).randomSample(7))).toEqual([
      0.3745401188473625, 0.9507143064099162, 0.7319939418114051, 0.5986584841970366, 0.15601864044243652,
      0.15599452033620265, 0.05808361216819946,
    ]);
  });

  it('randn caches the second gaussian of each pair: randn(1) then random_sample continues after both draws', () => {
    const rs = new NumpyRandomState(42);
    rs.randn(1);
    expect(rs.randomSample(1)[0]).toBe(0.7319939418114051); // third double of seed 42
    const a = new NumpyRandomState(9).randn(6);
    const b = new NumpyRandomState(9);
    const split = [...b.randn(1), ...b.randn(3), ...b.randn(2)];
    expect(split).toEqual(Array.from(a));
  });

  it('rejects seeds numpy rejects', () => {
    expect(() => new NumpyRandomState(-1)).toThrow(ConfigError);
    expect(() => new NumpyRandomState(2 ** 32)).toThrow(/2\*\*32 - 1/);
    expect(() => new NumpyRandomState(1.5)).toThrow(ConfigError);
    expect(new NumpyRandomState(2 ** 32 - 1).randn(2)).toHaveLength(2);
  });
});

describe('float16 rounding (astype(np.float16) from float64)', () => {
  it('rounds to nearest even, with overflow and subnormals as numpy', () => {
    const input = [65519.99, 65520.0, 1e-8, 2.98e-8, 5.96e-8, 3e-8, -0.1, 2049, 2051, 1 / 3, 0, -0, 1, -65504];
    const numpy = [65504.0, Infinity, 0.0, 0.0, 5.960464477539063e-08, 5.960464477539063e-08, -0.0999755859375, 2048.0, 2052.0,
      0.333251953125, 0, -0, 1, -65504];
    expect(input.map(roundToFloat16)).toEqual(numpy);
    expect(Number.isNaN(roundToFloat16(NaN))).toBe(true);
  });

  it('agrees with a slow reference that scans every half value', () => {
    // All finite positive halves in increasing order, from their bit patterns.
    const halves: number[] = [];
    for (let bits = 0; bits < 0x7c00; bits++) {
      const e = bits >> 10;
      const m = bits & 0x3ff;
      halves.push(e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
    }
    const nearest = (x: number): number => {
      let lo = 0;
      let hi = halves.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (halves[mid]! <= x) lo = mid; else hi = mid;
      }
      const dl = x - halves[lo]!;
      const dh = halves[hi]! - x;
      if (dl < dh) return halves[lo]!;
      if (dh < dl) return halves[hi]!;
      return lo % 2 === 0 ? halves[lo]! : halves[hi]!; // tie: even mantissa (index parity = mantissa parity)
    };
    const rs = new NumpyRandomState(3);
    for (let i = 0; i < 20000; i++) {
      const u = rs.nextDouble();
      const x = Math.exp((u - 0.6) * 25); // 3e-7 … 2e4: subnormal and normal halves
      expect(roundToFloat16(x)).toBe(nearest(x));
    }
    // Exact ties between neighbours.
    for (let k = 1; k < halves.length - 1; k += 97) {
      const mid = (halves[k]! + halves[k + 1]!) / 2;
      expect(roundToFloat16(mid)).toBe(nearest(mid));
    }
  });
});

describe.skipIf(!hasFixtures)('initial latents (apple/ml-stable-diffusion recipe)', () => {
  for (const name of ['sd15-pndm-cat231', 'sdxl-euler-cat231']) {
    it(`${name}: np.random.seed(231); randn(1,4,16,16).astype(float16) bit-exact`, () => {
      const ref = readNpy(path.join(REF, 'cases', name, 'initial_latents.npy'));
      expect(ref.shape).toEqual([1, 4, 16, 16]);
      const got = randnFloat16(231, ref.shape);
      expect(Array.from(got)).toEqual(Array.from(ref.data as Float32Array));
      const caseJson = JSON.parse(fs.readFileSync(path.join(REF, 'cases', name, 'case.json'), 'utf8')) as { init_noise_sigma: number };
      const scaled = initialLatents(231, ref.shape, caseJson.init_noise_sigma);
      if (caseJson.init_noise_sigma === 1) expect(Array.from(scaled)).toEqual(Array.from(got));
      // Every element stays a float16 value, within half an fp16 ulp (relative 2^-11, twice for the two roundings)
      // of the exact product.
      for (let i = 0; i < got.length; i++) {
        expect(roundToFloat16(scaled[i]!)).toBe(scaled[i]);
        const exact = got[i]! * caseJson.init_noise_sigma;
        expect(Math.abs(scaled[i]! - exact)).toBeLessThanOrEqual(Math.abs(exact) * 2 ** -10 + 2 ** -24);
      }
    });
  }

  it('sigma 7.439362 (SDXL Euler): numpy\'s half loop, checked against numpy 2.4 output', () => {
    const x = initialLatents(231, [1, 4, 16, 16], 7.439362049102783);
    expect(Array.from(x.subarray(0, 6))).toEqual([3.109375, 10.390625, -13.28125, -5.2734375, -0.5556640625, -5.76171875]);
    expect(Array.from(x.subarray(1021))).toEqual([-1.6494140625, -6.9296875, 4.96484375]);
    expect(x.reduce((a, b) => a + b, 0)).toBeCloseTo(-240.23867797851562, 9);
    // np.random.RandomState(7).randn(3,5).astype(np.float16) * 0.1
    expect(Array.from(initialLatents(7, [3, 5], 0.1))).toEqual([
      0.1689453125, -0.04656982421875, 0.0032806396484375, 0.040740966796875, -0.078857421875,
      0.00020647048950195312, -8.89897346496582e-05, -0.1754150390625, 0.10174560546875, 0.06005859375,
      -0.06256103515625, -0.01715087890625, 0.050537109375, -0.0261383056640625, -0.0242767333984375,
    ]);
  });
});
