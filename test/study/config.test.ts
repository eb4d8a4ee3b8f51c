/** Study config: defaults, the preset, and one-line ConfigErrors that name the key. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { loadStudyConfig, parseStudyConfig } from '../../src/study/config.js';
import { COREMLTOOLS_SDXL_CALIBRATION_PROMPTS, presetData } from '../../src/study/presets.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'study-config-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const plan = { steps: [{ api: 'palettize', config: { config_type: 'OpPalettizerConfig', global_config: { nbits: 4 } } }] };
const ok = { pipeline: '/models', variants: [{ name: 'p4', plan }] };

function errorOf(data: unknown): ConfigError & { key?: string } {
  try {
    parseStudyConfig(data);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).not.toContain('\n');
    return e as ConfigError & { key?: string };
  }
  throw new Error('no error');
}

describe('study config', () => {
  it('defaults: one prompt and seed, 50 steps, guidance 7.5, 4 UNet samples, 128 calibration samples on the prompts', () => {
    const c = parseStudyConfig(ok);
    expect(c.prompts).toEqual(['cat in a tuxedo, oil on canvas']);
    expect(c.seeds).toEqual([93]);
    expect([c.steps, c.guidance, c.threads, c.keepModels]).toEqual([50, 7.5, 0, false]);
    expect(c.unetInputs).toEqual({ count: 4 });
    expect(c.calibration).toEqual({ prompts: c.prompts, nsamples: 128, seed: 93 });
    expect(c.variants).toEqual([{ name: 'p4', label: 'p4', plan }]);
  });

  it('the coremltools-sdxl preset: Apple\'s ten configs, the tutorial prompt and seed, the three calibration prompts', () => {
    const c = parseStudyConfig({ preset: 'coremltools-sdxl', pipeline: '/sdxl', steps: 3 });
    expect(parseStudyConfig({ pipeline: '/sdxl', steps: 3 }, { base: presetData('coremltools-sdxl') })).toEqual(c);
    expect(c.preset).toBe('coremltools-sdxl');
    expect([c.prompts, c.seeds, c.steps, c.computeUnit]).toEqual([['cat in a tuxedo, oil on canvas'], [231], 3, 'CPU_ONLY']);
    expect(c.calibration).toEqual({ prompts: COREMLTOOLS_SDXL_CALIBRATION_PROMPTS, nsamples: 128, seed: 231 });
    expect(c.variants).toHaveLength(10);
    const sgpt = c.variants.find((v) => v.name === 'sparsegpt50-4bit-gs16')!;
    expect(sgpt.plan.steps[0]).toMatchObject({ api: 'sparsegpt', config: { global_config: { target_sparsity: 0.5 }, calibration_nsamples: 128, layers: ['down_blocks.\\d+', 'mid_block', 'up_blocks.\\d+'] } });
    expect(sgpt.plan.steps[1]).toMatchObject({ api: 'palettize', joint_compression: true, config: { global_config: { nbits: 4, granularity: 'per_grouped_channel', group_size: 16 } } });
    expect(c.variants.find((v) => v.name === 'palettize-6bit')!.plan.steps[0]).toMatchObject({ config: { global_config: { nbits: 6, granularity: 'per_tensor' } } });
    expect(() => presetData('nope')).toThrow(/unknown preset "nope" \(presets: coremltools-sdxl\)/);
    expect(errorOf({ preset: 'sd9', pipeline: '/x' }).message).toContain('preset: unknown preset "sd9"');
    // A config naming the preset overrides its keys; its variants replace the preset's.
    const mine = parseStudyConfig({ preset: 'coremltools-sdxl', pipeline: '/sdxl', seed: 7, variants: ok.variants });
    expect([mine.seeds, mine.prompts, mine.variants.map((v) => v.name)]).toEqual([[7], ['cat in a tuxedo, oil on canvas'], ['p4']]);
    expect(parseStudyConfig({ preset: 'coremltools-sdxl', pipeline: '/sdxl', prompts: ['a', 'b'], seeds: [1, 2] })).toMatchObject({ prompts: ['a', 'b'], seeds: [1, 2] });
  });

  it('relative paths resolve against the config file; plans may be files', () => {
    fs.writeFileSync(path.join(tmp, 'plan.yaml'), 'steps:\n  - api: prune\n    config: {config_type: OpMagnitudePrunerConfig, global_config: {target_sparsity: 0.5}}\n');
    fs.writeFileSync(path.join(tmp, 'study.yaml'), 'pipeline: models/sd\nseeds: [1, 2]\nunetInputs: {dir: rec, count: 2}\nvariants:\n  - {name: prune50, label: "50% pruned", plan: plan.yaml}\n');
    const c = loadStudyConfig(path.join(tmp, 'study.yaml'));
    expect(c.pipeline).toBe(path.join(tmp, 'models/sd'));
    expect(c.unetInputs).toEqual({ dir: path.join(tmp, 'rec'), count: 2 });
    expect(c.seeds).toEqual([1, 2]);
    expect(c.variants[0]).toMatchObject({ name: 'prune50', label: '50% pruned', plan: { steps: [{ api: 'prune' }] } });
  });

  it('errors name the key', () => {
    expect(errorOf({ variants: ok.variants }).key).toBe('pipeline');
    expect(errorOf({ ...ok, steps: 0 }).message).toContain('steps: must be an integer in [1, 1000], got 0');
    expect(errorOf({ ...ok, stepz: 3 }).message).toContain('stepz: unknown key');
    expect(errorOf({ ...ok, prompt: 'a', prompts: ['b'] }).key).toBe('prompt');
    expect(errorOf({ ...ok, seeds: [1, -1] }).key).toBe('seeds[1]');
    expect(errorOf({ ...ok, guidance: 'high' }).key).toBe('guidance');
    expect(errorOf({ ...ok, scheduler: 'warp' }).message).toContain('unknown scheduler "warp"');
    expect(errorOf({ ...ok, backend: 'gpu' }).key).toBe('backend');
    expect(errorOf({ ...ok, computeUnit: 'NPU' }).key).toBe('computeUnit');
    expect(errorOf({ ...ok, calibration: { prompts: [] } }).key).toBe('calibration.prompts');
    expect(errorOf({ ...ok, calibration: { nsample: 3 } }).key).toBe('calibration.nsample');
    expect(errorOf({ ...ok, unetInputs: { count: 0 } }).key).toBe('unetInputs.count');
    expect(errorOf({ ...ok, variants: [] }).key).toBe('variants');
    expect(errorOf({ ...ok, variants: [{ name: 'a b', plan }] }).key).toBe('variants[0].name');
    expect(errorOf({ ...ok, variants: [{ name: 'baseline', plan }] }).message).toContain('"baseline" is the uncompressed pipeline');
    expect(errorOf({ ...ok, variants: [{ name: 'x', plan }, { name: 'x', plan }] }).message).toContain('variants[1].name: "x" is used twice');
    expect(errorOf({ ...ok, variants: [{ name: 'x' }] }).key).toBe('variants[0].plan');
    const bad = errorOf({ ...ok, variants: [{ name: 'x', plan: { steps: [{ api: 'palettize', config: { config_type: 'OpPalettizerConfig', global_config: { nbits: 9 } } }] } }] });
    expect(bad.key).toBe('variants[0].plan');
    expect(bad.message).toMatch(/nbits/);
    // A sparsegpt step without calibration is fine (the study records it); a bad sparsegpt field is not.
    expect(parseStudyConfig({ ...ok, variants: [{ name: 's', plan: { steps: [{ api: 'sparsegpt', config: { global_config: { target_sparsity: 0.5 } } }] } }] }).variants).toHaveLength(1);
    expect(errorOf({ ...ok, variants: [{ name: 's', plan: { steps: [{ api: 'sparsegpt', config: { global_config: { target_sparsity: 2 } } }] } }] }).message).toContain('target_sparsity');
  });
});
