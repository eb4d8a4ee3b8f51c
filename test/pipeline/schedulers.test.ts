import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createScheduler, parsePythonJson, readSchedulerConfig, schedulerClassNameOf, type Scheduler, type SchedulerConfig,
} from '../../src/pipeline/schedulers/index.js';
import { alphasCumprod, betasFromConfig, fmaF32, rescaleZeroTerminalSnr, torchLinspaceF32 } from '../../src/pipeline/schedulers/betas.js';
import { ConfigReader } from '../../src/pipeline/schedulers/config.js';
import { gaussLegendre5, LMSDiscreteScheduler } from '../../src/pipeline/schedulers/lms-discrete.js';
import { npArange, npLinspace, npRound } from '../../src/pipeline/schedulers/timesteps.js';
import { NumpyRandomState } from '../../src/pipeline/rng.js';
import { ConfigError, ModelFormatError, UnsupportedError } from '../../src/errors.js';
import { readNpy } from '../../src/runtime/npy.js';
import { scratchDirs } from '../scratch.js';

const scratch = scratchDirs('cmo-sched-');

const REF = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures/pipeline-reference');
const SCHED = path.join(REF, 'schedulers');
const hasFixtures = fs.existsSync(path.join(SCHED, 'index.json'));

interface CaseJson {
  name: string; scheduler_class: string; config: SchedulerConfig; num_inference_steps: number; init_noise_sigma: number;
  timesteps: number[]; sigmas: number[] | null; n_step_calls: number;
}

/**
 * Worst |a − b| / max(|b|, rms(b)): relative error, where elements smaller than the tensor's RMS are judged
 * relative to the RMS (float32 rounding of a sum leaves ~1e-7·rms absolute error, so a near-zero element's own
 * relative error says nothing about the formula).
 */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let ss = 0;
  for (let i = 0; i < b.length; i++) ss += b[i]! * b[i]!;
  const rms = Math.sqrt(ss / Math.max(1, b.length));
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(Math.abs(b[i]!), rms));
  return worst;
}

const npyF32 = (file: string): Float32Array => readNpy(file).data as Float32Array;
const slice = (all: Float32Array, i: number, n: number) => all.subarray(i * n, (i + 1) * n);

describe.skipIf(!hasFixtures)('schedulers against diffusers 0.25 (fixtures)', () => {
  const index = hasFixtures ? (JSON.parse(fs.readFileSync(path.join(SCHED, 'index.json'), 'utf8')) as { name: string; class: string; steps: number }[]) : [];
  it('covers the six schedulers', () => {
    expect(new Set(index.map(c => c.class))).toEqual(new Set([
      'PNDMScheduler', 'DDIMScheduler', 'EulerDiscreteScheduler', 'EulerAncestralDiscreteScheduler', 'DPMSolverMultistepScheduler', 'LMSDiscreteScheduler',
    ]));
  });

  for (const entry of index) {
    for (const source of ['pipeline scheduler_config.json', 'effective config'] as const) {
      it(`${entry.name} (${source}): timesteps, sigmas, init_noise_sigma, scaled inputs and the whole trajectory ≤ 1e-5`, () => {
        const dir = path.join(SCHED, entry.name);
        const c = parsePythonJson(fs.readFileSync(path.join(dir, 'case.json'), 'utf8')) as CaseJson;
        // Created as diffusers did: X.from_config(<pipeline scheduler>.config), so missing keys take X's defaults.
        const model = entry.name.startsWith('sdxl') ? 'tiny-sdxl' : 'tiny-sd15';
        const config = source === 'effective config' ? c.config : readSchedulerConfig(path.join(REF, 'models', model, 'scheduler', 'scheduler_config.json')).config;
        const sch: Scheduler = createScheduler(c.scheduler_class, config);
        expect(sch.name).toBe(c.scheduler_class);
        expect(sch.order).toBe(1);
        sch.setTimesteps(c.num_inference_steps);
        expect(sch.timesteps).toEqual(c.timesteps); // exact: integers, or float32 values
        if (c.sigmas) {
          // Bit for bit: betas by torch.linspace's FMA kernel, ᾱ by its double-accumulated cumprod, np.interp.
          expect(Array.from(sch.sigmas)).toEqual(Array.from(npyF32(path.join(dir, 'sigmas.npy'))));
        } else {
          expect(sch.sigmas).toHaveLength(0);
        }
        expect(Math.abs(sch.initNoiseSigma - c.init_noise_sigma) / c.init_noise_sigma).toBeLessThan(1e-6);

        let x: Float32Array = Float32Array.from(npyF32(path.join(dir, 'x0.npy')));
        const n = x.length;
        const outputs = npyF32(path.join(dir, 'model_outputs.npy'));
        const scaled = npyF32(path.join(dir, 'scaled_inputs.npy'));
        const prev = npyF32(path.join(dir, 'prev_samples.npy'));
        const noise = fs.existsSync(path.join(dir, 'noise.npy')) ? npyF32(path.join(dir, 'noise.npy')) : undefined;
        expect(sch.timesteps).toHaveLength(c.n_step_calls);
        let worstScaled = 0;
        let worstPrev = 0;
        sch.timesteps.forEach((t, i) => {
          worstScaled = Math.max(worstScaled, relErr(sch.scaleModelInput(x, t), slice(scaled, i, n)));
          const out = sch.step(slice(outputs, i, n), t, x, noise ? { noise: slice(noise, i, n) } : {});
          const e = relErr(out, slice(prev, i, n));
          worstPrev = Math.max(worstPrev, e);
          expect(e, `step ${i} (t = ${t})`).toBeLessThan(1e-5);
          x = out; // state carried from step to step, as in the recipe
        });
        expect(worstScaled).toBeLessThan(1e-5);
        expect(worstPrev).toBeLessThan(1e-5);
        // Schedulers that only use + − × ÷ √ in float32 reproduce torch bit for bit. DPM-Solver's log/exp (MKL's
        // in torch, 1 ulp off correct rounding at times) and LMS's scipy.quad coefficients differ in the last bits.
        if (!['DPMSolverMultistepScheduler', 'LMSDiscreteScheduler'].includes(c.scheduler_class)) {
          expect(worstPrev).toBe(0);
          expect(worstScaled).toBe(0);
        }
      });
    }
  }
});

describe('timestep spacings (known answers from the formulas)', () => {
  const sd = { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, num_train_timesteps: 1000 };

  it('leading with steps_offset: (0..n−1)·(N // n) + offset, reversed', () => {
    const ddim = createScheduler('ddim', { ...sd, steps_offset: 1, timestep_spacing: 'leading' });
    ddim.setTimesteps(3);
    expect(ddim.timesteps).toEqual([667, 334, 1]); // 1000 // 3 = 333
    ddim.setTimesteps(50);
    expect(ddim.timesteps.slice(0, 3)).toEqual([981, 961, 941]);
    expect(ddim.timesteps.at(-1)).toBe(1);
    const euler = createScheduler('euler', { ...sd, steps_offset: 1, timestep_spacing: 'leading' });
    euler.setTimesteps(4);
    expect(euler.timesteps).toEqual([751, 501, 251, 1]);
  });

  it('trailing: round(arange(N, 0, −N/n)) − 1', () => {
    const ddim = createScheduler('DDIMScheduler', { ...sd, timestep_spacing: 'trailing' });
    ddim.setTimesteps(3);
    expect(ddim.timesteps).toEqual([999, 666, 332]); // 1000, 666.67→667, 333.33→333
    const euler = createScheduler('euler', { ...sd, timestep_spacing: 'trailing' });
    euler.setTimesteps(4);
    expect(euler.timesteps).toEqual([999, 749, 499, 249]);
    expect(euler.initNoiseSigma).toBe(euler.sigmas[0]); // trailing: max σ, not sqrt(σ² + 1)
  });

  it('linspace: round(linspace(0, N−1, n)) for DDIM, float32 linspace for Euler, n+1 points for DPM-Solver', () => {
    const ddim = createScheduler('ddim', { ...sd, timestep_spacing: 'linspace' });
    ddim.setTimesteps(4);
    expect(ddim.timesteps).toEqual([999, 666, 333, 0]);
    const euler = createScheduler('euler', { ...sd, timestep_spacing: 'linspace' });
    euler.setTimesteps(4);
    expect(euler.timesteps).toEqual([999, 666, 333, 0]);
    euler.setTimesteps(3);
    expect(euler.timesteps).toEqual([999, 499.5, 0]);
    const dpm = createScheduler('dpmpp', { ...sd, timestep_spacing: 'linspace' });
    dpm.setTimesteps(4);
    expect(dpm.timesteps).toEqual([999, 749, 500, 250]); // linspace(0, 999, 5) = 0, 249.75, 499.5, 749.25, 999
  });

  it('PNDM with skip_prk_steps repeats its first timestep; without, 12 Runge-Kutta timesteps come first', () => {
    const plms = createScheduler('pndm', { ...sd, steps_offset: 1, skip_prk_steps: true });
    plms.setTimesteps(4);
    expect(plms.timesteps).toEqual([751, 501, 501, 251, 1]);
    const prk = createScheduler('pndm', { ...sd, steps_offset: 1 });
    prk.setTimesteps(5);
    // leading: [1, 201, 401, 601, 801]; half step 100 → PRK pairs on the last four (without the top half step),
    // then PLMS on ts[:-3] reversed.
    expect(prk.timesteps).toEqual([801, 701, 701, 601, 601, 501, 501, 401, 401, 301, 301, 201, 201, 1]);
  });

  it('numpy primitives: linspace endpoint, round half to even, float arange', () => {
    expect(npLinspace(0, 999, 5)).toEqual([0, 249.75, 499.5, 749.25, 999]);
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 499.5, 2.4999].map(npRound)).toEqual([0, 2, 2, -0, -2, 500, 2]);
    // numpy: np.arange(1000, 0, -1000/3) and np.arange(1000, 0, -1000/7) (values start + i·delta)
    expect(npArange(1000, 0, -1000 / 3)).toEqual([1000.0, 666.6666666666667, 333.3333333333335]);
    expect(npArange(1000, 0, -1000 / 7)).toEqual([1000.0, 857.1428571428571, 714.2857142857142, 571.4285714285713, 428.57142857142844,
      285.71428571428555, 142.85714285714266]);
  });
});

describe('noise schedules', () => {
  it('fmaF32 rounds a·b + c once (where rounding to double first would tie and round to even)', () => {
    const a = 1 + 2 ** -12; // a² = 1 + 2^-11 + 2^-24: exactly between two floats
    expect(fmaF32(a, a, 0)).toBe(1 + 2 ** -11); // a true tie: even
    expect(fmaF32(a, a, 2 ** -70)).toBe(1 + 2 ** -11 + 2 ** -23); // just above the tie
    expect(fmaF32(a, a, -(2 ** -70))).toBe(1 + 2 ** -11);
    expect(fmaF32(-a, a, -(2 ** -70))).toBe(-(1 + 2 ** -11 + 2 ** -23));
    expect(fmaF32(3, 0.5, 0.25)).toBe(1.75);
  });

  it('torch.linspace in float32 meets both ends exactly; scaled_linear betas square it', () => {
    const l = torchLinspaceF32(0.0001, 0.02, 1000);
    expect(l[0]).toBe(Math.fround(0.0001));
    expect(l[999]).toBe(Math.fround(0.02));
    const cfg = new ConfigReader({ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 }, 'test');
    const b = betasFromConfig(cfg, 1000, { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' });
    expect(b[0]).toBeCloseTo(0.00085, 9);
    expect(b[999]).toBeCloseTo(0.012, 8);
    // ᾱ of SD: ᾱ_0 = 1 − β_0, ᾱ_999 ≈ 0.0047 (σ_max 14.6146 = sqrt((1 − ᾱ)/ᾱ))
    const ac = alphasCumprod(b);
    expect(ac[0]).toBe(Math.fround(1 - b[0]!));
    expect(Math.sqrt((1 - ac[999]!) / ac[999]!)).toBeCloseTo(14.614645, 4);
  });

  it('squaredcos_cap_v2 follows the cosine ᾱ; zero-SNR rescaling makes ᾱ_T = 0 and keeps ᾱ_0', () => {
    const cfg = new ConfigReader({ beta_schedule: 'squaredcos_cap_v2' }, 'test');
    const b = betasFromConfig(cfg, 1000, { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' });
    const ac = alphasCumprod(b);
    const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
    for (const t of [0, 100, 500, 900]) expect(ac[t]! / (alphaBar((t + 1) / 1000) / alphaBar(0))).toBeCloseTo(1, 4);
    expect(b[999]).toBeCloseTo(0.999, 6); // capped at max_beta
    const lin = betasFromConfig(new ConfigReader({}, 'test'), 1000, { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' });
    const r = alphasCumprod(rescaleZeroTerminalSnr(lin));
    expect(r[999]).toBe(0);
    expect(r[0]).toBeCloseTo(alphasCumprod(lin)[0]!, 6);
  });
});

describe('LMS coefficients', () => {
  it('Gauss–Legendre is exact for cubics and the LMS basis integrals sum to the step length', () => {
    expect(gaussLegendre5(t => 4 * t ** 3 - 2 * t + 1, -1, 2)).toBeCloseTo((16 - 4 + 2) - (1 - 1 - 1), 12);
    const lms = createScheduler('lms', { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 }) as LMSDiscreteScheduler;
    lms.setTimesteps(10);
    for (const [order, t] of [[1, 0], [2, 1], [3, 2], [4, 5]] as const) {
      let sum = 0;
      for (let j = 0; j < order; j++) sum += lms.lmsCoefficient(order, t, j);
      // The Lagrange basis sums to 1, so the coefficients sum to σ_{t+1} − σ_t.
      expect(sum).toBeCloseTo(lms.sigmas[t + 1]! - lms.sigmas[t]!, 10);
    }
    // Order 2 by hand: ∫ (τ − σ_{t−1})/(σ_t − σ_{t−1}) dτ over [σ_t, σ_{t+1}].
    const s = lms.sigmas;
    const a = s[3]!;
    const b = s[4]!;
    const p = s[2]!;
    expect(lms.lmsCoefficient(2, 3, 0)).toBeCloseTo(((b - p) ** 2 - (a - p) ** 2) / 2 / (a - p), 10);
  });
});

describe('Euler-ancestral noise source', () => {
  it('uses { noise } when given, else draws randn from { rng }, and needs one of them', () => {
    const cfg = { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 };
    const a = createScheduler('euler_ancestral', cfg);
    const b = createScheduler('euler_ancestral', cfg);
    a.setTimesteps(5);
    b.setTimesteps(5);
    const x = Float32Array.from(new NumpyRandomState(1).randn(16));
    const m = Float32Array.from(new NumpyRandomState(2).randn(16));
    const noise = Float32Array.from(new NumpyRandomState(3).randn(16));
    const t = a.timesteps[0]!;
    expect(Array.from(a.step(m, t, x, { rng: new NumpyRandomState(3) }))).toEqual(Array.from(b.step(m, t, x, { noise })));
    const c = createScheduler('euler_ancestral', cfg);
    c.setTimesteps(5);
    expect(() => c.step(m, t, x)).toThrow(/noise.*rng/);
  });
});

describe('scheduler configs and errors', () => {
  it('parsePythonJson reads Infinity, -Infinity and NaN tokens (and nothing else that is not JSON)', () => {
    const v = parsePythonJson('{"a": -Infinity, "b": [Infinity, NaN, 1.5e3, "NaN"], "c": null, "d": "x\\"y"}') as Record<string, unknown>;
    expect(v['a']).toBe(-Infinity);
    expect((v['b'] as unknown[])[0]).toBe(Infinity);
    expect(Number.isNaN((v['b'] as unknown[])[1])).toBe(true);
    expect((v['b'] as unknown[]).slice(2)).toEqual([1500, 'NaN']);
    expect(v['d']).toBe('x"y');
    expect(() => parsePythonJson('{"a": inf}')).toThrow(SyntaxError);
    expect(() => parsePythonJson('{"a": 1} x')).toThrow(SyntaxError);
  });

  it('readSchedulerConfig returns _class_name and the keys; bad files → typed errors naming the file', () => {
    const dir = scratch();
    const good = path.join(dir, 'scheduler_config.json');
    fs.writeFileSync(good, '{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity, "solver_order": 2}');
    const r = readSchedulerConfig(good);
    expect(r.className).toBe('DPMSolverMultistepScheduler');
    expect(r.config['lambda_min_clipped']).toBe(-Infinity);
    expect(createScheduler(r.className!, r.config).name).toBe('DPMSolverMultistepScheduler');
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '{"a": ');
    expect(() => readSchedulerConfig(bad)).toThrow(ModelFormatError);
    expect(() => readSchedulerConfig(bad)).toThrow(/bad\.json/);
    expect(() => readSchedulerConfig(path.join(dir, 'missing.json'))).toThrow(ConfigError);
  });

  it('names: class names and CLI short names; unknown → ConfigError', () => {
    expect(schedulerClassNameOf('dpmpp')).toBe('DPMSolverMultistepScheduler');
    expect(schedulerClassNameOf('EulerAncestralDiscrete')).toBe('EulerAncestralDiscreteScheduler'); // ml-stable-diffusion
    expect(schedulerClassNameOf('toString')).toBeUndefined();
    expect(createScheduler('lms').name).toBe('LMSDiscreteScheduler');
    expect(() => createScheduler('heun')).toThrow(/unknown scheduler "heun"/);
  });

  it('unknown keys are ignored; wrong values → ConfigError naming the key; unimplemented options → UnsupportedError', () => {
    expect(() => createScheduler('euler', { _class_name: 'X', _diffusers_version: '0.25.1', skip_prk_steps: true, whatever: [1] })).not.toThrow();
    expect(() => createScheduler('euler', { beta_schedule: 'cubic' })).toThrow(/"beta_schedule" must be one of/);
    expect(() => createScheduler('euler', { beta_schedule: 'cubic' }, { file: '/m/scheduler_config.json' })).toThrow(/^\/m\/scheduler_config\.json: EulerDiscreteScheduler: config "beta_schedule"/);
    expect(() => createScheduler('ddim', { thresholding: true }, { file: 'p.json' })).toThrow(/^p\.json: .*thresholding/);
    expect(() => createScheduler('ddim', { timestep_spacing: 'even' })).toThrow(ConfigError);
    expect(() => createScheduler('pndm', { num_train_timesteps: 0 })).toThrow(/num_train_timesteps/);
    expect(() => createScheduler('dpmpp', { solver_order: '2' })).toThrow(/solver_order/);
    expect(() => createScheduler('lms', { use_karras_sigmas: 'yes' })).toThrow(/use_karras_sigmas/);
    expect(() => createScheduler('euler', { prediction_type: 'x0' })).toThrow(/prediction_type/);
    expect(() => createScheduler('euler', { trained_betas: [0.1, 0.2], num_train_timesteps: 1000 })).toThrow(/trained_betas/);
    expect(() => createScheduler('pndm', { prediction_type: 'sample' })).toThrow(UnsupportedError);
    expect(() => createScheduler('dpmpp', { algorithm_type: 'sde-dpmsolver++' })).toThrow(UnsupportedError);
    expect(() => createScheduler('ddim', { thresholding: true })).toThrow(UnsupportedError);
    const s = createScheduler('ddim', {});
    expect(() => s.step(new Float32Array(4), 1, new Float32Array(4))).toThrow(/setTimesteps/);
    s.setTimesteps(10);
    expect(() => s.setTimesteps(0)).toThrow(ConfigError);
    expect(() => s.setTimesteps(1001)).toThrow(ConfigError);
    expect(() => s.step(new Float32Array(3), s.timesteps[0]!, new Float32Array(4))).toThrow(/3 elements/);
    const e = createScheduler('euler', {});
    e.setTimesteps(10);
    expect(() => e.scaleModelInput(new Float32Array(4), 12.5)).toThrow(/not in the schedule/);
  });

  it('trained_betas replace the beta schedule', () => {
    const betas = Array.from({ length: 20 }, (_, i) => 0.001 + i * 0.002);
    const s = createScheduler('ddim', { trained_betas: betas, num_train_timesteps: 20, set_alpha_to_one: false, clip_sample: false });
    s.setTimesteps(5);
    expect(s.timesteps).toEqual([16, 12, 8, 4, 0]);
    // One DDIM step with ε = 0 scales x by sqrt(ᾱ_prev / ᾱ_t).
    const ac = alphasCumprod(Float32Array.from(betas));
    const out = s.step(new Float32Array([0]), 16, new Float32Array([1]));
    expect(out[0]).toBeCloseTo(Math.sqrt(ac[12]! / ac[16]!), 6);
  });
});

describe('known answers for options the fixtures do not cover', () => {
  const sd = { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, num_train_timesteps: 1000 };
  const trainSigma = (t: number) => {
    const cfg = new ConfigReader(sd, 'test');
    const ac = alphasCumprod(betasFromConfig(cfg, 1000, { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' }));
    return Math.fround(Math.sqrt(Math.fround(Math.fround(1 - ac[t]!) / ac[t]!)));
  };

  it('Euler with Karras sigmas: ρ = 7 ramp between σ(999) and σ(0), timesteps from log-σ interpolation', () => {
    const e = createScheduler('euler', { ...sd, use_karras_sigmas: true });
    e.setTimesteps(6);
    const smax = trainSigma(999);
    const smin = trainSigma(0);
    const rho = 7;
    const expected = [0, 0.2, 0.4, 0.6, 0.8, 1].map(r => (smax ** (1 / rho) + r * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho);
    expected.forEach((v, i) => expect(e.sigmas[i]! / v).toBeCloseTo(1, 6));
    expect(e.sigmas[6]).toBe(0);
    expect(e.timesteps[0]).toBeCloseTo(999, 3);
    expect(e.timesteps[5]).toBeCloseTo(0, 3);
    // A middle timestep t satisfies σ(t) = σ_i when σ is interpolated log-linearly between integer timesteps.
    const t = e.timesteps[3]!;
    const lo = Math.floor(t);
    const w = t - lo;
    const logSigma = (1 - w) * Math.log(trainSigma(lo)) + w * Math.log(trainSigma(lo + 1));
    expect(Math.exp(logSigma) / e.sigmas[3]!).toBeCloseTo(1, 5);
  });

  it('Euler v-prediction step: x̂0 = −σ/√(σ²+1)·v + x/(σ²+1), x′ = x + (x − x̂0)/σ · (σ′ − σ)', () => {
    const e = createScheduler('euler', { ...sd, prediction_type: 'v_prediction', timestep_spacing: 'trailing' });
    e.setTimesteps(4);
    const [s0, s1] = [e.sigmas[0]!, e.sigmas[1]!];
    const x = 1.25;
    const v = -0.5;
    const x0 = (-s0 / Math.sqrt(s0 * s0 + 1)) * v + x / (s0 * s0 + 1);
    const out = e.step(new Float32Array([v]), e.timesteps[0]!, new Float32Array([x]));
    expect(out[0]! / (x + ((x - x0) / s0) * (s1 - s0))).toBeCloseTo(1, 6);
  });

  it('DDIM v-prediction and sample prediction: x′ = √ᾱ′·x̂0 + √(1−ᾱ′)·ε̂', () => {
    const cfg = new ConfigReader(sd, 'test');
    const ac = alphasCumprod(betasFromConfig(cfg, 1000, { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' }));
    const x = 0.8;
    const m = 0.3;
    for (const prediction of ['v_prediction', 'sample'] as const) {
      const d = createScheduler('ddim', { ...sd, prediction_type: prediction, clip_sample: false, steps_offset: 1 });
      d.setTimesteps(10); // 901, 801, …
      const [a, ap] = [ac[901]!, ac[801]!];
      const x0 = prediction === 'v_prediction' ? Math.sqrt(a) * x - Math.sqrt(1 - a) * m : m;
      const eps = prediction === 'v_prediction' ? Math.sqrt(a) * m + Math.sqrt(1 - a) * x : (x - Math.sqrt(a) * x0) / Math.sqrt(1 - a);
      const out = d.step(new Float32Array([m]), 901, new Float32Array([x]));
      expect(out[0]! / (Math.sqrt(ap) * x0 + Math.sqrt(1 - ap) * eps)).toBeCloseTo(1, 5);
    }
  });

  it('PNDM with Runge-Kutta steps: with ε = 0 every full step scales x by √(ᾱ_prev/ᾱ_t), so the run telescopes', () => {
    const cfg = new ConfigReader(sd, 'test');
    const ac = alphasCumprod(betasFromConfig(cfg, 1000, { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' }));
    const p = createScheduler('pndm', { ...sd, steps_offset: 1, set_alpha_to_one: true });
    p.setTimesteps(5); // PRK 801 → 601 → 401 → 201, PLMS 201 → 1 → final
    let x: Float32Array = new Float32Array([0.5, -2]);
    for (const t of p.timesteps) x = p.step(new Float32Array(2), t, x);
    const ratio = Math.sqrt(1 / ac[801]!);
    expect(x[0]! / (0.5 * ratio)).toBeCloseTo(1, 5);
    expect(x[1]! / (-2 * ratio)).toBeCloseTo(1, 5);
  });

  it('DPM-Solver++ with Karras sigmas: integer timesteps, last sigma repeated; first-order only with solver_order 1', () => {
    const d = createScheduler('dpmpp', { ...sd, use_karras_sigmas: true });
    d.setTimesteps(10);
    expect(d.timesteps.every(Number.isInteger)).toBe(true);
    expect(d.timesteps[0]).toBe(999);
    expect(d.sigmas).toHaveLength(11);
    expect(d.sigmas[10]).toBe(d.sigmas[9]);
    // solver_order 1 is DDIM-like: x′ = (σ′/σ)·x − α′(e^{−h} − 1)·x̂0 in the (α, σ) parametrisation.
    const o1 = createScheduler('dpmpp', { ...sd, solver_order: 1 });
    o1.setTimesteps(4);
    const sig = (s: number) => ({ a: 1 / Math.sqrt(s * s + 1), s: s / Math.sqrt(s * s + 1) });
    const s0 = sig(o1.sigmas[0]!);
    const s1 = sig(o1.sigmas[1]!);
    const h = Math.log(s1.a / s1.s) - Math.log(s0.a / s0.s);
    const x = 2;
    const eps = 0.5;
    const x0 = (x - s0.s * eps) / s0.a;
    const out = o1.step(new Float32Array([eps]), o1.timesteps[0]!, new Float32Array([x]));
    expect(out[0]! / ((s1.s / s0.s) * x - s1.a * (Math.exp(-h) - 1) * x0)).toBeCloseTo(1, 5);
  });

  it('DPM-Solver(++) orders 1–3 against a float64 transcription of the multistep formulas (Lu et al. 2022)', () => {
    for (const algorithm of ['dpmsolver++', 'dpmsolver'] as const) {
      for (const order of [2, 3]) {
        const sch = createScheduler('dpmpp', { ...sd, solver_order: order, algorithm_type: algorithm, timestep_spacing: 'leading', steps_offset: 1 });
        sch.setTimesteps(12);
        const n = 32;
        let x: Float32Array = Float32Array.from(new NumpyRandomState(10).randn(n));
        let xr = Array.from(x);
        const hist: number[][] = [];
        const len = sch.timesteps.length;
        const als = (sg: number) => {
          const a = 1 / Math.sqrt(sg * sg + 1);
          return { a, s: sg * a, l: Math.log(a) - Math.log(sg * a) };
        };
        sch.timesteps.forEach((t, i) => {
          const m = Float32Array.from(new NumpyRandomState(100 + i).randn(n));
          const out = sch.step(m, t, x);
          // reference
          const cur = als(sch.sigmas[i]!);
          const conv = xr.map((v, k) => (algorithm === 'dpmsolver++' ? (v - cur.s * m[k]!) / cur.a : m[k]!));
          hist.push(conv);
          let k = Math.min(order, hist.length);
          if (i === len - 1) k = 1;
          else if (i === len - 2) k = Math.min(k, 2);
          const T = als(sch.sigmas[i + 1]!);
          const S = [0, 1, 2].map(j => (i - j >= 0 ? als(sch.sigmas[i - j]!) : cur));
          const h = T.l - S[0]!.l;
          const ms = [hist[hist.length - 1]!, hist[hist.length - 2]!, hist[hist.length - 3]!];
          const pp = algorithm === 'dpmsolver++';
          const phi1 = pp ? Math.expm1(-h) : Math.expm1(h);
          xr = xr.map((v, q) => {
            const base = pp ? (T.s / S[0]!.s) * v - T.a * phi1 * ms[0]![q]! : (T.a / S[0]!.a) * v - T.s * phi1 * ms[0]![q]!;
            if (k === 1) return base;
            const r0 = (S[0]!.l - S[1]!.l) / h;
            const d10 = (ms[0]![q]! - ms[1]![q]!) / r0;
            if (k === 2) return base - 0.5 * (pp ? T.a : T.s) * phi1 * d10;
            const r1 = (S[1]!.l - S[2]!.l) / h;
            const d11 = (ms[1]![q]! - ms[2]![q]!) / r1;
            const d1 = d10 + (r0 / (r0 + r1)) * (d10 - d11);
            const d2 = (d10 - d11) / (r0 + r1);
            return pp
              ? base + T.a * (phi1 / h + 1) * d1 - T.a * ((phi1 + h) / (h * h) - 0.5) * d2
              : base - T.s * (phi1 / h - 1) * d1 - T.s * ((phi1 - h) / (h * h) - 0.5) * d2;
          });
          expect(relErr(out, xr), `${algorithm} order ${order} step ${i}`).toBeLessThan(1e-5);
          x = out;
        });
      }
    }
    expect(() => createScheduler('dpmpp', { solver_order: 4 })).toThrow(/solver_order/);
  });

  it('init_noise_sigma before setTimesteps is that of the whole training schedule (diffusers\' initial sigmas)', () => {
    expect(createScheduler('euler', sd).initNoiseSigma).toBeCloseTo(14.6146, 3);
    expect(createScheduler('lms', { ...sd, timestep_spacing: 'leading' }).initNoiseSigma).toBeCloseTo(Math.sqrt(14.614646 ** 2 + 1), 3);
    expect(createScheduler('pndm', sd).initNoiseSigma).toBe(1);
  });
});
