// `predict --profile` profiles a warm run: `--warmup N` untimed runs first (default 1 with --profile,
// 0 without), so the first run's one-time work (fp16 widening, conv weight packing) stays out of the
// table. Checked on the VAE decoder block fixture by counting the predict calls the CLI makes and
// which of them was profiled; the outputs still match the fixture's expected values.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { parseWarmup } from '../../src/cli/commands/predict.js';
import { ConfigError } from '../../src/errors.js';
import { Executor } from '../../src/runtime/executor.js';
import { readNpy } from '../../src/runtime/npy.js';
import { runCli } from './run-cli.js';

const fixture = path.join('..', 'shared', 'fixtures', 'executor-reference', 'net_vae_decoder_block');
const dir = mkdtempSync(path.join(os.tmpdir(), 'cmo-predict-warmup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

describe('parseWarmup', () => {
  it('defaults to one warm-up run with --profile and none without', () => {
    expect(parseWarmup(undefined, true)).toBe(1);
    expect(parseWarmup(undefined, false)).toBe(0);
    expect(parseWarmup('0', true)).toBe(0);
    expect(parseWarmup('3', false)).toBe(3);
  });
  it('rejects what is not a count with a ConfigError', () => {
    for (const bad of ['-1', '1.5', 'two', '', '1001']) expect(() => parseWarmup(bad, true)).toThrow(ConfigError);
    expect(() => parseWarmup('-1', true)).toThrow(/--warmup must be an integer from 0 to 1000, got '-1'/);
  });
});

describe('predict --warmup', () => {
  async function run(extra: string[]) {
    const calls: { profile: boolean }[] = [];
    const original = Executor.prototype.predict;
    const spy = vi.spyOn(Executor.prototype, 'predict').mockImplementation(function (this: Executor, inputs, options = {}) {
      calls.push({ profile: options.profile !== undefined && options.profile !== false });
      return original.call(this, inputs, options);
    });
    const out = path.join(dir, `out-${extra.join('_')}`);
    try {
      const r = await runCli(['predict', path.join(fixture, 'model.mlpackage'), '--inputs', path.join(fixture, 'inputs'), '--out', out, '--threads', '2', ...extra]);
      return { r, calls, out };
    } finally {
      spy.mockRestore();
    }
  }

  it('--profile runs once untimed, then profiles the second (warm) run', async () => {
    const { r, calls } = await run(['--profile', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(calls).toEqual([{ profile: false }, { profile: true }]);
    const json = JSON.parse(r.stdout) as { warmupRuns: number; profile: { ops: { type: string; calls: number }[] } };
    expect(json.warmupRuns).toBe(1);
    // The profile is of one run: the block's four convs once each, not twice.
    expect(json.profile.ops.find((o) => o.type === 'conv')?.calls).toBe(4);
  });

  it('--warmup 2 makes two untimed runs; the outputs are still right', async () => {
    const { r, calls, out } = await run(['--profile', '--warmup', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(calls).toEqual([{ profile: false }, { profile: false }, { profile: true }]);
    expect(r.stdout).toMatch(/after 2 warm-up runs/);
    expect(r.stdout).toMatch(/^op type\s+calls/m);
    const got = readNpy(path.join(out, 'image.npy')).data as Float32Array;
    const want = readNpy(path.join(fixture, 'expected', 'image.npy')).data as Float32Array;
    expect(got.length).toBe(want.length);
    let bad = 0;
    for (let i = 0; i < want.length; i++) if (!(Math.abs(got[i]! - want[i]!) <= 2e-4 + 1e-3 * Math.abs(want[i]!))) bad++;
    expect(bad).toBe(0);
  });

  it('without --profile there is no warm-up unless asked; a bad count is a one-line error', async () => {
    expect((await run([])).calls).toEqual([{ profile: false }]);
    expect((await run(['--warmup', '1'])).calls).toEqual([{ profile: false }, { profile: false }]);
    const bad = await run(['--warmup', 'x']);
    expect(bad.r.code).not.toBe(0);
    expect(bad.r.stderr).toMatch(/--warmup must be an integer/);
    expect(bad.r.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.calls).toEqual([]);
  });
});
