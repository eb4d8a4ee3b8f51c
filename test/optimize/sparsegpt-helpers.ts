/**
 * A small conv + attention + feed-forward network for the SparseGPT / GPTQ tests, and calibration
 * folders for it (one folder per sample, one .npy per input).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ProgramBuilder } from '../../src/mil/builder.js';
import type { Model } from '../../src/model.js';
import { writeNpy } from '../../src/runtime/npy.js';
import { syntheticFp16, syntheticFp32 } from '../../src/util/synthetic.js';

export const LATENT = [2, 4, 8, 8];
export const TOKENS = [2, 6, 16];

/**
 * Layers (op names follow a UNet's naming so `layers` regexes have something to match):
 *   down_blocks_0: conv_in 4→16 3×3 same; silu; conv 16→16 3×3 groups 2 stride 1 custom pad
 *   mid_block:     tokens → q/k/v (one input), attention, out proj; ff 16→64 gelu 64→16; proj matmul (const y)
 *   up_blocks_0:   conv_transpose with a const weight (skipped) + a 1×1 conv
 */
export async function buildNet(dir: string, name: string, options: { specVersion?: 7 | 9; dtype?: 'fp16' | 'fp32'; seed?: number } = {}): Promise<Model> {
  const dtype = options.dtype ?? 'fp32';
  let seed = options.seed ?? 7;
  const b = new ProgramBuilder({ specVersion: options.specVersion ?? 9, weightsPath: path.join(dir, `${name}.bin`) });
  const w = (n: string, shape: number[], fanIn: number) => {
    const count = shape.reduce((a, c) => a * c, 1);
    return b.const(n, dtype === 'fp16' ? syntheticFp16({ count, fanIn, seed: seed++ }) : syntheticFp32({ count, fanIn, seed: seed++ }), shape, dtype);
  };
  const latent = b.input('latent', dtype, LATENT);
  const c1 = b.op('conv', { x: latent, weight: w('down_blocks_0_conv_in_weight', [16, 4, 3, 3], 36), pad_type: 'same', strides: [1, 1], dilations: [1, 1], groups: 1 }, { name: 'down_blocks_0_conv_in' });
  const a1 = b.op('silu', { x: c1 }, { name: 'down_blocks_0_silu' });
  const c2 = b.op('conv', { x: a1, weight: w('down_blocks_0_conv2_weight', [16, 8, 3, 3], 72), pad_type: 'custom', pad: [1, 0, 0, 1], strides: [1, 1], dilations: [1, 1], groups: 2 }, { name: 'down_blocks_0_conv2' });
  const a2 = b.op('silu', { x: c2 }, { name: 'down_blocks_0_silu2' });
  b.output(a2, 'features');

  const tokens = b.input('tokens', dtype, TOKENS);
  const q = b.op('linear', { x: tokens, weight: w('mid_block_q_weight', [16, 16], 16) }, { name: 'mid_block_q' });
  const k = b.op('linear', { x: tokens, weight: w('mid_block_k_weight', [16, 16], 16) }, { name: 'mid_block_k' });
  const v = b.op('linear', { x: tokens, weight: w('mid_block_v_weight', [16, 16], 16) }, { name: 'mid_block_v' });
  const s = b.op('matmul', { x: q, y: k, transpose_x: false, transpose_y: true }, { name: 'mid_block_scores' });
  const p = b.op('softmax', { x: s, axis: -1 }, { name: 'mid_block_softmax' });
  const att = b.op('matmul', { x: p, y: v, transpose_x: false, transpose_y: false }, { name: 'mid_block_attend' });
  const o = b.op('linear', { x: att, weight: w('mid_block_out_weight', [16, 16], 16) }, { name: 'mid_block_out' });
  const r = b.op('add', { x: tokens, y: o }, { name: 'mid_block_residual' });
  const f1 = b.op('linear', { x: r, weight: w('mid_block_ff1_weight', [64, 16], 16) }, { name: 'mid_block_ff1' });
  const g = b.op('gelu', { x: f1, mode: 'EXACT' }, { name: 'mid_block_gelu' });
  const f2 = b.op('linear', { x: g, weight: w('mid_block_ff2_weight', [16, 64], 64) }, { name: 'mid_block_ff2' });
  const r2 = b.op('add', { x: r, y: f2 }, { name: 'mid_block_residual2' });
  const proj = b.op('matmul', { x: r2, y: w('mid_block_proj_weight', [16, 24], 16), transpose_x: false, transpose_y: false }, { name: 'mid_block_proj' });
  b.output(proj, 'text');

  const up = b.op('conv_transpose', { x: a2, weight: w('up_blocks_0_upsample_weight', [16, 8, 2, 2], 64), pad_type: 'valid', strides: [2, 2], dilations: [1, 1], groups: 1 }, { name: 'up_blocks_0_upsample' });
  const c3 = b.op('conv', { x: up, weight: w('up_blocks_0_conv_weight', [8, 8, 1, 1], 8), pad_type: 'valid', strides: [1, 1], dilations: [1, 1], groups: 1 }, { name: 'up_blocks_0_conv' });
  b.output(c3, 'upsampled');
  return b.save(path.join(dir, `${name}.mlpackage`));
}

/** Deterministic normal-ish values (sum of uniforms) from a seed. */
export function gaussian(count: number, seed: number, scale = 1): Float64Array {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 4294967296;
  };
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = (next() + next() + next() + next() - 2) * 1.7 * scale;
  return out;
}

/** `n` sample folders: latent (float64, numpy's default dtype, in odd samples) and tokens (float32). */
export function writeCalibration(dir: string, n: number, seed = 100, options: { zeroTokenChannel?: number } = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    const sdir = path.join(dir, `sample_${String(i).padStart(3, '0')}`);
    fs.mkdirSync(sdir, { recursive: true });
    // Latents as images are: spatially smooth, channels correlated (a shared field + per-channel noise).
    const [B, C, H, W] = LATENT as [number, number, number, number];
    const noise0 = gaussian(B * C * H * W, seed + 2 * i, 0.3);
    const phase = gaussian(B * 4, seed + 5000 + i);
    const lat = new Float64Array(B * C * H * W);
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        for (let y = 0; y < H; y++) {
          for (let x = 0; x < W; x++) {
            const field = Math.sin(0.7 * x + phase[b * 4]!) + Math.cos(0.5 * y + phase[b * 4 + 1]!) + 0.5 * Math.sin(0.4 * (x + y) + phase[b * 4 + 2]!);
            const k = ((b * C + c) * H + y) * W + x;
            lat[k] = field * (1 + 0.3 * c) + noise0[k]!;
          }
        }
      }
    }
    if (i % 2 === 1) writeNpy(path.join(sdir, 'latent.npy'), { dtype: 'float64', shape: LATENT, data: lat });
    else writeNpy(path.join(sdir, 'latent.npy'), { dtype: 'float32', shape: LATENT, data: Float32Array.from(lat) });
    // Correlated token channels (a shared component), as real activations are.
    const base = gaussian(TOKENS[0]! * TOKENS[1]!, seed + 2 * i + 1);
    const noise = gaussian(TOKENS.reduce((a, c) => a * c, 1), seed + 1000 + i, 0.5);
    const tok = new Float32Array(noise.length);
    for (let t = 0; t < base.length; t++) for (let c = 0; c < TOKENS[2]!; c++) tok[t * TOKENS[2]! + c] = base[t]! * (1 + c / 8) + noise[t * TOKENS[2]! + c]!;
    if (options.zeroTokenChannel !== undefined) for (let t = 0; t < base.length; t++) tok[t * TOKENS[2]! + options.zeroTokenChannel] = 0;
    writeNpy(path.join(sdir, 'tokens.npy'), { dtype: 'float32', shape: TOKENS, data: tok });
  }
  return dir;
}

/**
 * tokens → linear mid_block_pre → cond(pred = `taken`) { true: linear mid_block_branch (its weight
 * const inside the block) ; false: identity } → linear mid_block_post. With taken = false no
 * calibration sample reaches mid_block_branch.
 */
export async function buildCondNet(dir: string, name: string, taken = false): Promise<Model> {
  const { ProgramBuilder: Builder } = await import('../../src/mil/builder.js');
  const { Model: M } = await import('../../src/model.js');
  const { makeOp } = await import('../../src/mil/program.js');
  const b = new Builder({ specVersion: 9, weightsPath: path.join(dir, `${name}.bin`) });
  const tokens = b.input('tokens', 'fp32', TOKENS);
  const pre = b.op('linear', { x: tokens, weight: b.const('mid_block_pre_weight', syntheticFp32({ count: 256, fanIn: 16, seed: 1 }), [16, 16], 'fp32') }, { name: 'mid_block_pre' });
  const branchW = b.const('mid_block_branch_weight', syntheticFp32({ count: 256, fanIn: 16, seed: 2 }), [16, 16], 'fp32');
  const branch = b.op('linear', { x: pre, weight: branchW }, { name: 'mid_block_branch' });
  const other = b.op('identity', { x: pre }, { name: 'mid_block_skip' });
  const post = b.op('linear', { x: branch, weight: b.const('mid_block_post_weight', syntheticFp32({ count: 256, fanIn: 16, seed: 3 }), [16, 16], 'fp32') }, { name: 'mid_block_post' });
  b.output(post, 'out');
  const { spec, weightsFile } = b.build();
  const fn = (spec as unknown as { mlProgram: { functions: Record<string, { opset: string; blockSpecializations: Record<string, { operations: { type: string; outputs?: { name: string; type: unknown }[]; blocks?: unknown[] }[] }> }> } }).mlProgram.functions['main']!;
  const ops = fn.blockSpecializations[fn.opset]!.operations;
  const take = (n: string) => ops.splice(ops.findIndex((o) => o.outputs?.[0]?.name === n), 1)[0]!;
  const wOp = take(branchW.name), bOp = take(branch.name), sOp = take(other.name);
  const outType = bOp.outputs![0]!.type;
  // The branch result keeps the name the post layer reads.
  bOp.outputs![0]!.name = 'mid_block_branch_true';
  (sOp.outputs![0]!).name = 'mid_block_branch_false';
  const cond = makeOp('cond', 'mid_block_cond', { pred: b.value('bool', [taken], []) }, [{ name: branch.name, type: outType as never }]);
  cond.blocks = [
    { outputs: ['mid_block_branch_true'], operations: [wOp as never, bOp as never] },
    { outputs: ['mid_block_branch_false'], operations: [sOp as never] },
  ];
  ops.splice(ops.findIndex((o) => o.outputs?.[0]?.name === post.name), 0, cond as never);
  return M.fromSpec(spec as never, { weightFiles: weightsFile ? [{ name: 'weight.bin', from: weightsFile, move: true }] : [] }).save(path.join(dir, `${name}.mlpackage`));
}

/** One 1-channel 3×3 conv (9 Hessian columns: not a multiple of 4) on `img` [2, 1, 8, 8], with calibration. */
export async function buildTailNet(dir: string): Promise<{ model: Model; calibration: string }> {
  const b = new ProgramBuilder({ specVersion: 9, weightsPath: path.join(dir, 'tail.bin') });
  const img = b.input('img', 'fp32', [2, 1, 8, 8]);
  const c = b.op('conv', { x: img, weight: b.const('tail_conv_weight', syntheticFp32({ count: 8 * 9, fanIn: 9, seed: 11 }), [8, 1, 3, 3], 'fp32'), pad_type: 'same', strides: [1, 1], dilations: [1, 1], groups: 1 }, { name: 'tail_conv' });
  b.output(c, 'out');
  const model = await b.save(path.join(dir, 'tail.mlpackage'));
  const cal = path.join(dir, 'tail-calib');
  for (let i = 0; i < 4; i++) {
    const sdir = path.join(cal, `s${i}`);
    fs.mkdirSync(sdir, { recursive: true });
    const v = gaussian(128, 300 + i);
    for (let k = 1; k < 128; k++) v[k] = 0.8 * v[k - 1]! + 0.6 * v[k]!; // spatially correlated
    writeNpy(path.join(sdir, 'img.npy'), { dtype: 'float64', shape: [2, 1, 8, 8], data: v });
  }
  return { model, calibration: cal };
}
