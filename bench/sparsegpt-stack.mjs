// Apple's SDXL recipe (SparseGPT 40 % with layers down_blocks.\d+ / mid_block / up_blocks.\d+, then
// 4-bit per_grouped_channel gs16 palettization with joint_compression) on a synthetic SD-style UNet
// built with the ProgramBuilder, against magnitude pruning 40 % + the same palettization (the
// baseline, same run). Not a full-size SDXL UNet: a down / mid / up stack at SD channel widths with
// skip connections (so boundary values cross several layers) and smooth synthetic latents as
// calibration samples. Prints the time split (forward, Hessians, SparseGPT, write, palettize), peak
// Hessian memory, boundary cache, peak RSS, and the output PSNR of both models on held-out samples.
//   npm run build:ts && node bench/sparsegpt-stack.mjs [--latent 16] [--channels 320] [--samples 8]
//        [--heldout 4] [--sparsity 0.4] [--mode sequential|oneshot] [--threads N] [--json]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const lib = {
  ...(await import(path.join(here, '..', 'dist', 'index.js'))),
  ...(await import(path.join(here, '..', 'dist', 'mil', 'index.js'))),
  ...(await import(path.join(here, '..', 'dist', 'util', 'synthetic.js'))),
};
const { ProgramBuilder, loadModel, syntheticFp16, setThreads, compressModel, pruneWeights, compareModels, writeNpy } = lib;

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : typeof dflt === 'number' ? Number(args[i + 1]) : args[i + 1];
};
const latent = opt('--latent', 16), C = opt('--channels', 320), nSamples = opt('--samples', 8), nHeld = opt('--heldout', 4);
const sparsity = opt('--sparsity', 0.4), mode = opt('--mode', 'sequential'), threads = opt('--threads', 0), json = args.includes('--json');
if (threads) setThreads(threads);
const heads = 8;

function vmHwmMiB() {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-recipe-bench-'));
let seed = 1;
const b = new ProgramBuilder({ specVersion: 9, weightsPath: path.join(dir, 'weight.bin') });
const w = (name, shape, fanIn) => b.const(name, syntheticFp16({ count: shape.reduce((a, c) => a * c, 1), fanIn, seed: seed++ }), shape, 'fp16');
const bias = (name, n) => b.const(name, syntheticFp16({ count: n, kind: 'bias', seed: seed++ }), [n], 'fp16');
const conv = (x, name, cin, cout, k, stride = 1) => b.op('conv', { x, weight: w(`${name}_weight`, [cout, cin, k, k], cin * k * k), bias: bias(`${name}_bias`, cout), pad_type: 'same', strides: [stride, stride], dilations: [1, 1], groups: 1 }, { name });

/** ResNet (GN-free: LN over channels via tokens is enough for the benchmark) + attention + GEGLU at width c, side s. */
function block(x, p, cin, c, s) {
  const h1 = conv(b.op('silu', { x }, { name: `${p}_act1` }), `${p}_resnets_0_conv1`, cin, c, 3);
  const h2 = conv(b.op('silu', { x: h1 }, { name: `${p}_act2` }), `${p}_resnets_0_conv2`, c, c, 3);
  const skip = cin === c ? x : conv(x, `${p}_resnets_0_conv_shortcut`, cin, c, 1);
  const r = b.op('add', { x: skip, y: h2 }, { name: `${p}_res` });
  const T = s * s, D = c / heads;
  const tokens = b.op('transpose', { x: b.op('reshape', { x: r, shape: [2, c, T] }, { name: `${p}_flat` }), perm: [0, 2, 1] }, { name: `${p}_tokens` });
  const ln = b.op('layer_norm', { x: tokens, axes: [2], epsilon: 1e-5 }, { name: `${p}_ln` });
  const proj = (n) => b.op('transpose', { x: b.op('reshape', { x: b.op('linear', { x: ln, weight: w(`${p}_attentions_0_${n}_weight`, [c, c], c) }, { name: `${p}_attentions_0_${n}` }), shape: [2, T, heads, D] }, { name: `${p}_${n}_heads` }), perm: [0, 2, 1, 3] }, { name: `${p}_${n}_t` });
  const q = proj('to_q'), k = proj('to_k'), v = proj('to_v');
  const attn = b.op('softmax', { x: b.op('mul', { x: b.op('matmul', { x: q, y: k, transpose_x: false, transpose_y: true }, { name: `${p}_scores` }), y: 1 / Math.sqrt(D) }, { name: `${p}_scaled` }), axis: -1 }, { name: `${p}_softmax` });
  const ctx = b.op('matmul', { x: attn, y: v, transpose_x: false, transpose_y: false }, { name: `${p}_ctx` });
  const merged = b.op('reshape', { x: b.op('transpose', { x: ctx, perm: [0, 2, 1, 3] }, { name: `${p}_merge_t` }), shape: [2, T, c] }, { name: `${p}_merge` });
  const h = b.op('add', { x: tokens, y: b.op('linear', { x: merged, weight: w(`${p}_attentions_0_to_out_weight`, [c, c], c), bias: bias(`${p}_attentions_0_to_out_bias`, c) }, { name: `${p}_attentions_0_to_out` }) }, { name: `${p}_attn_res` });
  const ff = b.op('linear', { x: b.op('layer_norm', { x: h, axes: [2], epsilon: 1e-5 }, { name: `${p}_ln2` }), weight: w(`${p}_ff_proj_weight`, [8 * c, c], c), bias: bias(`${p}_ff_proj_bias`, 8 * c) }, { name: `${p}_ff_proj` });
  const [a, gate] = b.op('split', { x: ff, num_splits: 2, axis: -1 }, { name: `${p}_geglu_split`, outputs: [{ dtype: 'fp16', shape: [2, T, 4 * c] }, { dtype: 'fp16', shape: [2, T, 4 * c] }] }).all;
  const geglu = b.op('mul', { x: a, y: b.op('gelu', { x: gate, mode: 'EXACT' }, { name: `${p}_gelu` }) }, { name: `${p}_geglu` });
  const h2b = b.op('add', { x: h, y: b.op('linear', { x: geglu, weight: w(`${p}_ff_out_weight`, [c, 4 * c], 4 * c), bias: bias(`${p}_ff_out_bias`, c) }, { name: `${p}_ff_out` }) }, { name: `${p}_ff_res` });
  return b.op('reshape', { x: b.op('transpose', { x: h2b, perm: [0, 2, 1] }, { name: `${p}_untokens` }), shape: [2, c, s, s] }, { name: `${p}_out` });
}

const sample = b.input('sample', 'fp16', [2, 4, latent, latent]);
let x = conv(sample, 'conv_in', 4, C, 3);
const d0 = block(x, 'down_blocks_0', C, C, latent);
x = conv(d0, 'down_blocks_0_downsamplers_0_conv', C, C, 3, 2);
const d1 = block(x, 'down_blocks_1', C, 2 * C, latent / 2);
const m = block(d1, 'mid_block', 2 * C, 2 * C, latent / 2);
const u1 = block(b.op('concat', { values: [m, d1], axis: 1 }, { name: 'up_blocks_0_cat' }), 'up_blocks_0', 4 * C, 2 * C, latent / 2);
const up = b.op('upsample_nearest_neighbor', { x: u1, scale_factor_height: 2, scale_factor_width: 2 }, { name: 'up_blocks_0_upsample', outputs: [{ dtype: 'fp16', shape: [2, 2 * C, latent, latent] }] });
const u2 = block(b.op('concat', { values: [up, d0], axis: 1 }, { name: 'up_blocks_1_cat' }), 'up_blocks_1', 3 * C, C, latent);
b.output(conv(b.op('silu', { x: u2 }, { name: 'out_act' }), 'conv_out', C, 4, 3), 'noise_pred');
const model = await b.save(path.join(dir, 'unet.mlpackage'));

// Smooth latents with per-sample phases (diffusion latents are spatially correlated).
function writeSamples(folder, n, base) {
  for (let i = 0; i < n; i++) {
    const sdir = path.join(folder, `s${String(i).padStart(3, '0')}`);
    fs.mkdirSync(sdir, { recursive: true });
    const v = new Float32Array(2 * 4 * latent * latent);
    for (let k = 0; k < v.length; k++) {
      const xx = k % latent, yy = Math.floor(k / latent) % latent, ch = Math.floor(k / latent / latent) % 4;
      v[k] = Math.sin(0.3 * xx + base + i + ch) + Math.cos(0.25 * yy * (1 + ch / 4) + 2 * i) + 0.3 * Math.sin(17.3 * k + i);
    }
    writeNpy(path.join(sdir, 'sample.npy'), { dtype: 'float32', shape: [2, 4, latent, latent], data: v });
  }
  return folder;
}
const calib = writeSamples(path.join(dir, 'calib'), nSamples, 0);
const held = writeSamples(path.join(dir, 'held'), nHeld, 100);
const heldInputs = fs.readdirSync(held).sort().map((s) => {
  const a = lib.readNpy(path.join(held, s, 'sample.npy'));
  return { sample: { data: a.data, shape: a.shape, dtype: 'fp32' } };
});

const layers = ['down_blocks.\\d+', 'mid_block', 'up_blocks.\\d+'];
const palettize = { api: 'palettize', config: { config_type: 'OpPalettizerConfig', global_config: { nbits: 4, granularity: 'per_grouped_channel', group_size: 16 } }, joint_compression: true };
const loaded = await loadModel(model.path);
const t0 = performance.now();
const sg = await compressModel(loaded, { steps: [{ api: 'sparsegpt', config: { global_config: { target_sparsity: sparsity }, layers, calibration_nsamples: nSamples }, calibration: calib, mode }, palettize] });
const tRecipe = (performance.now() - t0) / 1000;
const lw = sg.steps[0].layerwise;
const names = lw.ops.filter((o) => o.status === 'compressed').map((o) => o.weight);
const t1 = performance.now();
const mag = await compressModel(loaded, { steps: [{ api: 'prune', config: { config_type: 'OpMagnitudePrunerConfig', global_config: null, op_name_configs: Object.fromEntries(names.map((n) => [n, { target_sparsity: sparsity, weight_threshold: 0 }])) } }, palettize] });
const tMag = (performance.now() - t1) / 1000;
const psnr = async (m) => (await compareModels(loaded, m, { inputs: heldInputs })).outputs[0].psnr;
const [pSg, pMag] = [await psnr(sg), await psnr(mag)];
const sgSize = await sg.save(path.join(dir, 'sg.mlpackage')).then(() => fs.statSync(path.join(dir, 'sg.mlpackage', 'Data', 'com.apple.CoreML', 'weights', 'weight.bin')).size).catch(() => NaN);
const meanRatio = lw.ops.filter((o) => o.status === 'compressed').reduce((s, o) => s + o.error / o.baselineError, 0) / names.length;
const result = {
  model: { latent, channels: C, weights: names.length, samples: nSamples, heldout: nHeld, mode, sparsity },
  recipeSeconds: tRecipe, split: { ...lw.seconds, palettize: sg.steps[1].seconds }, magnitudeRecipeSeconds: tMag,
  peakHessianBytes: lw.peakHessianBytes, waves: lw.waves, cachePeakBytes: lw.cachePeakBytes, peakRssMiB: vmHwmMiB(),
  psnr: { sparsegpt: pSg, magnitude: pMag }, meanLayerErrorRatio: meanRatio, weightBinBytes: sgSize,
  load: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '), cores: os.cpus().length,
};
if (json) console.log(JSON.stringify(result, null, 2));
else {
  const s = result.split;
  console.log(`synthetic SD-style UNet: latent ${latent}x${latent}, C=${C}, ${names.length} conv/linear weights; ${nSamples} calibration samples (batch 2), ${mode}; ${result.cores} cores, load ${result.load}`);
  console.log(`SparseGPT ${sparsity * 100}% + 4-bit gs16 (joint): ${tRecipe.toFixed(1)} s = forward ${s.forward.toFixed(1)} + Hessians ${s.hessian.toFixed(1)} + SparseGPT ${s.compress.toFixed(1)} + write ${s.write.toFixed(1)} + palettize ${s.palettize.toFixed(1)} (+ setup)`);
  console.log(`baseline (same run): magnitude ${sparsity * 100}% + 4-bit gs16: ${tMag.toFixed(1)} s`);
  console.log(`output PSNR on ${nHeld} held-out samples: SparseGPT recipe ${pSg.toFixed(2)} dB, magnitude recipe ${pMag.toFixed(2)} dB; mean layer error ratio SparseGPT / magnitude ${meanRatio.toFixed(3)}`);
  console.log(`peak Hessian wave ${(lw.peakHessianBytes / 2 ** 20).toFixed(1)} MiB in ${lw.waves} waves; boundary cache peak ${(lw.cachePeakBytes / 2 ** 20).toFixed(1)} MiB; peak RSS ${result.peakRssMiB.toFixed(0)} MiB`);
}
fs.rmSync(dir, { recursive: true, force: true });
