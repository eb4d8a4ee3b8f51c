// Executor benchmark on a synthetic SD-style block stack built with the ProgramBuilder (fp16
// weights at SD 1.5 shapes, latent 32×32 by default): ResNet-style conv + group norm + SiLU,
// self-attention (8 heads) and a GEGLU feed-forward, repeated --blocks times. Prints time per
// forward, achieved GFLOP/s (from the analytic FLOP count of convs and matmuls) against the GEMM peak
// measured in the same run, and peak RSS. Usage:
//   npm run build:ts && node bench/executor-sd.mjs [--latent 32] [--channels 320] [--blocks 2] [--runs 3] [--threads N]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist', 'index.js');
const lib = await import(dist);
const { ProgramBuilder, createExecutor, loadModel, syntheticFp16, setThreads, nativeAddon } = {
  ...lib,
  ...(await import(path.join(here, '..', 'dist', 'mil', 'index.js'))),
  ...(await import(path.join(here, '..', 'dist', 'util', 'synthetic.js'))),
  ...(await import(path.join(here, '..', 'dist', 'native.js'))),
};

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : Number(args[i + 1]);
};
const latent = opt('--latent', 32), C = opt('--channels', 320), blocks = opt('--blocks', 2), runs = opt('--runs', 3), threads = opt('--threads', 0);
const heads = 8, groups = 32, T = latent * latent, D = C / heads;
if (threads) setThreads(threads);

function vmHwmMiB() {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'cmo-exec-bench-'));
let seed = 1;
const b = new ProgramBuilder({ specVersion: 9, weightsPath: path.join(dir, 'weight.bin') });
const w = (name, shape, fanIn) => b.const(name, syntheticFp16({ count: shape.reduce((a, c) => a * c, 1), fanIn, seed: seed++ }), shape, 'fp16');
const ones = (name, n, kind) => b.const(name, syntheticFp16({ count: n, kind, seed: seed++ }), [n], 'fp16');
let flops = 0;

function groupNorm(x, name, shape) {
  // coremltools' GroupNorm pattern: reshape to [N, groups, -1], normalize the last axis, reshape back, affine.
  const r = b.op('reshape', { x, shape: [1, groups, (C / groups) * shape[2] * shape[3]] }, { name: `${name}_group` });
  const n = b.op('layer_norm', { x: r, axes: [2], epsilon: 1e-5 }, { name: `${name}_norm` });
  const back = b.op('reshape', { x: n, shape }, { name: `${name}_ungroup` });
  const g = b.op('mul', { x: back, y: b.const(`${name}_gamma`, syntheticFp16({ count: C, kind: 'norm', seed: seed++ }), [1, C, 1, 1], 'fp16') }, { name: `${name}_scale` });
  return b.op('add', { x: g, y: b.const(`${name}_beta`, syntheticFp16({ count: C, kind: 'bias', seed: seed++ }), [1, C, 1, 1], 'fp16') }, { name: `${name}_shift` });
}

let x = b.op('cast', { x: b.input('sample', 'fp32', [1, C, latent, latent]), dtype: 'fp16' }, { name: 'sample_fp16' });
for (let i = 0; i < blocks; i++) {
  const p = `b${i}`;
  // ResNet half: GN → SiLU → conv3×3, residual.
  const gn = groupNorm(x, `${p}_gn`, [1, C, latent, latent]);
  const act = b.op('silu', { x: gn }, { name: `${p}_silu` });
  const conv = b.op('conv', { x: act, weight: w(`${p}_conv_w`, [C, C, 3, 3], C * 9), bias: ones(`${p}_conv_b`, C, 'bias'), pad_type: 'same', strides: [1, 1], dilations: [1, 1], groups: 1 }, { name: `${p}_conv` });
  flops += 2 * C * C * 9 * T;
  x = b.op('add', { x, y: conv }, { name: `${p}_res` });
  // Attention over the latent tokens.
  const tokens = b.op('transpose', { x: b.op('reshape', { x, shape: [1, C, T] }, { name: `${p}_flat` }), perm: [0, 2, 1] }, { name: `${p}_tokens` });
  const ln = b.op('layer_norm', { x: tokens, axes: [2], gamma: ones(`${p}_ln_g`, C, 'norm'), beta: ones(`${p}_ln_b`, C, 'bias'), epsilon: 1e-5 }, { name: `${p}_ln` });
  const proj = (n) => b.op('transpose', { x: b.op('reshape', { x: b.op('linear', { x: ln, weight: w(`${p}_${n}_w`, [C, C], C) }, { name: `${p}_${n}` }), shape: [1, T, heads, D] }, { name: `${p}_${n}_heads` }), perm: [0, 2, 1, 3] }, { name: `${p}_${n}_t` });
  const q = proj('q'), k = proj('k'), v = proj('v');
  flops += 3 * 2 * T * C * C;
  const scores = b.op('matmul', { x: q, y: k, transpose_x: false, transpose_y: true }, { name: `${p}_scores` });
  const scaled = b.op('mul', { x: scores, y: 1 / Math.sqrt(D) }, { name: `${p}_scaled` });
  const attn = b.op('softmax', { x: scaled, axis: -1 }, { name: `${p}_softmax` });
  const ctx = b.op('matmul', { x: attn, y: v, transpose_x: false, transpose_y: false }, { name: `${p}_context` });
  flops += 2 * 2 * heads * T * T * D;
  const merged = b.op('reshape', { x: b.op('transpose', { x: ctx, perm: [0, 2, 1, 3] }, { name: `${p}_merge_t` }), shape: [1, T, C] }, { name: `${p}_merge` });
  const out = b.op('linear', { x: merged, weight: w(`${p}_o_w`, [C, C], C), bias: ones(`${p}_o_b`, C, 'bias') }, { name: `${p}_o` });
  flops += 2 * T * C * C;
  const h = b.op('add', { x: tokens, y: out }, { name: `${p}_attn_res` });
  // GEGLU feed-forward.
  const ff = b.op('linear', { x: h, weight: w(`${p}_ff1_w`, [8 * C, C], C), bias: ones(`${p}_ff1_b`, 8 * C, 'bias') }, { name: `${p}_ff1` });
  const [a, gate] = b.op('split', { x: ff, num_splits: 2, axis: -1 }, { name: `${p}_geglu_split`, outputs: [{ dtype: 'fp16', shape: [1, T, 4 * C] }, { dtype: 'fp16', shape: [1, T, 4 * C] }] }).all;
  const geglu = b.op('mul', { x: a, y: b.op('gelu', { x: gate, mode: 'EXACT' }, { name: `${p}_gelu` }) }, { name: `${p}_geglu` });
  const ff2 = b.op('linear', { x: geglu, weight: w(`${p}_ff2_w`, [C, 4 * C], 4 * C), bias: ones(`${p}_ff2_b`, C, 'bias') }, { name: `${p}_ff2` });
  flops += 2 * T * C * 8 * C + 2 * T * 4 * C * C;
  const h2 = b.op('add', { x: h, y: ff2 }, { name: `${p}_ff_res` });
  x = b.op('reshape', { x: b.op('transpose', { x: h2, perm: [0, 2, 1] }, { name: `${p}_untokens` }), shape: [1, C, latent, latent] }, { name: `${p}_out` });
}
b.output(b.op('cast', { x, dtype: 'fp32' }, { name: 'out_fp32' }), 'out');
const model = await b.save(path.join(dir, 'sd-blocks.mlpackage'));

const rssBefore = vmHwmMiB();
const exec = createExecutor(await loadModel(model.path));
const input = { sample: { data: Float32Array.from({ length: C * T }, (_, i) => Math.sin(i * 0.37)), shape: [1, C, latent, latent] } };
await exec.predict(input); // warm-up: constants decoded, buffers allocated
const times = [];
for (let r = 0; r < runs; r++) {
  const t0 = performance.now();
  await exec.predict(input);
  times.push((performance.now() - t0) / 1000);
}
const best = Math.min(...times);
const peak = await nativeAddon().gemmBenchmark({ m: 1024, n: 1024, k: 1024, repeats: 5, threads });
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`executor SD-style stack: ${blocks} blocks, C=${C}, latent ${latent}x${latent} (${T} tokens), ${heads} heads; ${os.cpus().length} cores, load ${load}`);
console.log(`forward: best ${(best * 1000).toFixed(1)} ms, median ${(times.sort((a, c) => a - c)[Math.floor(times.length / 2)] * 1000).toFixed(1)} ms over ${runs} runs`);
console.log(`work: ${(flops / 1e9).toFixed(2)} GFLOP (convs + matmuls) -> ${(flops / best / 1e9).toFixed(1)} GFLOP/s`);
console.log(`baseline (same run): ${peak.blas} GEMM 1024^3 through the executor's GEMM path: ${peak.gflops.toFixed(1)} GFLOP/s -> executor at ${((100 * flops) / best / 1e9 / peak.gflops).toFixed(0)}% of GEMM peak`);
console.log(`peak RSS: ${vmHwmMiB().toFixed(0)} MiB (${rssBefore.toFixed(0)} MiB before loading the model)`);
rmSync(dir, { recursive: true, force: true });
