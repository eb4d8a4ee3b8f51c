/**
 * SDXL pipeline benchmark: every component of SDXL base at full size with the published configs,
 * synthetic weights, through `convertDiffusers` and the CPU executor.
 *
 * A diffusers folder is written under --out (never the repo): the UNet by bench/convert.mjs's
 * generator (the 1,680 tensors of ../shared/models/sdxl_unet_weights.json), CLIP ViT-L/14
 * (`text_encoder`: hidden 768, 12 layers, 12 heads, intermediate 3072, quick_gelu), OpenCLIP bigG
 * (`text_encoder_2`, CLIPTextModelWithProjection: hidden 1280, 32 layers, 20 heads, intermediate
 * 5120, gelu, projection 1280) and the AutoencoderKL decoder of SDXL base (block_out_channels
 * 128/256/512/512, layers_per_block 2, latent 4). Weights are `syntheticFp16` ~N(0, 1/fan_in) (norm
 * gammas ~1, small biases), so activations stay finite through the real topology.
 *
 * Then, each in a fresh child process (its own peak RSS, VmHWM):
 *  - convert each component (`convertDiffusers`, --precision fp32 by default, --attention original);
 *  - the same-run SGEMM peak: a 2048³ sgemm through the executor's GEMM path (addon gemmBenchmark);
 *  - one predict of each converted model on the executor (--threads, default 2): TextEncoder (77
 *    tokens), TextEncoder2, the UNet (batch 2, the latent given by --latent, default 64×64) and the
 *    VAE decoder (latent → 8× image). GFLOP/s from the FLOPs counted on the lowered graph: conv,
 *    conv_transpose, linear, matmul and einsum (2 × output elements × contracted length).
 *
 * With --runs N (N ≥ 2) each predict child runs N times: the first (cold: weight pages mapped in, caches
 * filled) and the median of the other N − 1 (warm) are both printed.
 *
 * PyTorch in the same run: when `import torch` works (Debian python3-torch), bench/diffusers_torch.py
 * rebuilds the UNet and the VAE decoder as torch modules of the published architecture (parameter count
 * checked), random weights, fp32, same latent, batch and threads, and times one warm forward (a warm-up
 * first); `--no-torch` skips it.
 *
 * Each child prints its load average: on a shared machine the absolute times mean little without it.
 *
 *   node bench/pipeline.mjs [--latent 64] [--precision fp32|fp16] [--attention original|split_einsum]
 *       [--threads 2] [--runs 1] [--no-torch] [--components text_encoder,text_encoder_2,unet,vae_decoder]
 *       [--out DIR] [--keep] [--reuse] [--json]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSyntheticPipeline } from './convert.mjs';
import { numel, writeSyntheticSafetensors } from './lib/synthetic-safetensors.mjs';
import { DEFAULT_WORK_DIR, MODELS_DIR, RssSampler, fmtGB, fmtMiB, fmtSec, machineLine, now, parseArgs, printTable, runChild, seedOf } from './lib/common.mjs';

const dist = (p) => import(new URL(`../dist/${p}`, import.meta.url).href);
const SELF = fileURLToPath(import.meta.url);
const COMPONENTS = ['text_encoder', 'text_encoder_2', 'unet', 'vae_decoder'];
const PACKAGE = { text_encoder: 'TextEncoder.mlpackage', text_encoder_2: 'TextEncoder2.mlpackage', unet: 'Unet.mlpackage', vae_decoder: 'VAEDecoder.mlpackage' };
const loadLine = () => os.loadavg().map((l) => l.toFixed(1)).join(' / ');

/* ---- synthetic weights for the text encoders and the VAE decoder (names as transformers / diffusers write them) ---- */

const CLIP_L = { architectures: ['CLIPTextModel'], hidden_act: 'quick_gelu', hidden_size: 768, intermediate_size: 3072, num_attention_heads: 12, num_hidden_layers: 12, projection_dim: 768, pad_token_id: 1 };
const CLIP_BIGG = { architectures: ['CLIPTextModelWithProjection'], hidden_act: 'gelu', hidden_size: 1280, intermediate_size: 5120, num_attention_heads: 20, num_hidden_layers: 32, projection_dim: 1280, pad_token_id: 1 };

function clipTensors(c) {
  const H = c.hidden_size, I = c.intermediate_size, t = [];
  t.push(['text_model.embeddings.token_embedding.weight', [49408, H]], ['text_model.embeddings.position_embedding.weight', [77, H]]);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `text_model.encoder.layers.${l}`;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) t.push([`${p}.self_attn.${n}.weight`, [H, H]], [`${p}.self_attn.${n}.bias`, [H]]);
    for (const n of ['layer_norm1', 'layer_norm2']) t.push([`${p}.${n}.weight`, [H]], [`${p}.${n}.bias`, [H]]);
    t.push([`${p}.mlp.fc1.weight`, [I, H]], [`${p}.mlp.fc1.bias`, [I]], [`${p}.mlp.fc2.weight`, [H, I]], [`${p}.mlp.fc2.bias`, [H]]);
  }
  t.push(['text_model.final_layer_norm.weight', [H]], ['text_model.final_layer_norm.bias', [H]]);
  if (c.architectures[0] === 'CLIPTextModelWithProjection') t.push(['text_projection.weight', [c.projection_dim, H]]);
  return t;
}

const SDXL_VAE = {
  _class_name: 'AutoencoderKL', _diffusers_version: '0.25.1', act_fn: 'silu', block_out_channels: [128, 256, 512, 512],
  down_block_types: Array(4).fill('DownEncoderBlock2D'), up_block_types: Array(4).fill('UpDecoderBlock2D'), force_upcast: true,
  in_channels: 3, out_channels: 3, latent_channels: 4, layers_per_block: 2, norm_num_groups: 32, sample_size: 1024, scaling_factor: 0.13025,
};

/** The decoder half of AutoencoderKL (+ post_quant_conv): what VAEDecoder.mlpackage consumes. */
function vaeDecoderTensors(c) {
  const t = [];
  const conv = (p, o, i, k) => t.push([`${p}.weight`, [o, i, k, k]], [`${p}.bias`, [o]]);
  const norm = (p, ch) => t.push([`${p}.weight`, [ch]], [`${p}.bias`, [ch]]);
  const resnet = (p, i, o) => { norm(`${p}.norm1`, i); conv(`${p}.conv1`, o, i, 3); norm(`${p}.norm2`, o); conv(`${p}.conv2`, o, o, 3); if (i !== o) conv(`${p}.conv_shortcut`, o, i, 1); };
  const rev = [...c.block_out_channels].reverse();
  const top = rev[0];
  conv('post_quant_conv', c.latent_channels, c.latent_channels, 1);
  conv('decoder.conv_in', top, c.latent_channels, 3);
  resnet('decoder.mid_block.resnets.0', top, top);
  norm('decoder.mid_block.attentions.0.group_norm', top);
  for (const n of ['to_q', 'to_k', 'to_v', 'to_out.0']) t.push([`decoder.mid_block.attentions.0.${n}.weight`, [top, top]], [`decoder.mid_block.attentions.0.${n}.bias`, [top]]);
  resnet('decoder.mid_block.resnets.1', top, top);
  let prev = top;
  rev.forEach((ch, i) => {
    for (let j = 0; j <= c.layers_per_block; j++) resnet(`decoder.up_blocks.${i}.resnets.${j}`, j === 0 ? prev : ch, ch);
    if (i < rev.length - 1) conv(`decoder.up_blocks.${i}.upsamplers.0.conv`, ch, ch, 3);
    prev = ch;
  });
  norm('decoder.conv_norm_out', c.block_out_channels[0]);
  conv('decoder.conv_out', c.out_channels, c.block_out_channels[0], 3);
  return t;
}

/** A safetensors file (F16), written by bench/lib's streaming writer (bounded memory). */
async function writeSafetensors(file, tensors) {
  // Embedding tables are looked up, not multiplied: unit-scale rows, like a trained CLIP's.
  const fanIn = (name, shape) => (/embedding/.test(name) ? 1 : shape.length > 1 ? numel(shape.slice(1)) : 1);
  const bytes = await writeSyntheticSafetensors(file, tensors.map(([name, shape]) => ({ name, shape })), 'F16', { fanIn });
  return { tensors: tensors.length, weights: tensors.reduce((a, [, s]) => a + numel(s), 0), bytes };
}

async function writeSdxlFolder(dir, components) {
  const info = {};
  let s = now();
  const json = (f, v) => fs.writeFileSync(path.join(dir, f), JSON.stringify(v, null, 1));
  if (components.includes('unet')) {
    const unet = await writeSyntheticPipeline(dir, 'sdxl', 'F16'); // model_index, unet/, vae/ config, scheduler/
    info.unet = { ...unet, seconds: now() - s };
  } else { // the configs the converter reads (sample size, scheduler) without the 5 GB of UNet weights
    const shapes = JSON.parse(fs.readFileSync(path.join(MODELS_DIR, 'sdxl_unet_weights.json'), 'utf8'));
    for (const d of ['unet', 'vae', 'scheduler']) fs.mkdirSync(path.join(dir, d), { recursive: true });
    json('unet/config.json', { _class_name: 'UNet2DConditionModel', _diffusers_version: '0.25.1', ...shapes.config });
    json('scheduler/scheduler_config.json', {
      _class_name: 'EulerDiscreteScheduler', beta_end: 0.012, beta_schedule: 'scaled_linear', beta_start: 0.00085,
      num_train_timesteps: 1000, prediction_type: 'epsilon', steps_offset: 1, timestep_spacing: 'leading',
    });
  }
  for (const [c, cfg] of [['text_encoder', CLIP_L], ['text_encoder_2', CLIP_BIGG]]) {
    s = now();
    fs.mkdirSync(path.join(dir, c), { recursive: true });
    json(`${c}/config.json`, { ...cfg, model_type: 'clip_text_model', vocab_size: 49408, max_position_embeddings: 77, layer_norm_eps: 1e-5, bos_token_id: 49406, eos_token_id: 49407, torch_dtype: 'float16' });
    info[c] = { ...(await writeSafetensors(path.join(dir, c, 'model.safetensors'), clipTensors(cfg))), seconds: now() - s };
  }
  s = now();
  json('vae/config.json', SDXL_VAE);
  info.vae_decoder = { ...(await writeSafetensors(path.join(dir, 'vae', 'diffusion_pytorch_model.safetensors'), vaeDecoderTensors(SDXL_VAE))), seconds: now() - s };
  json('model_index.json', {
    _class_name: 'StableDiffusionXLPipeline', _diffusers_version: '0.25.1', force_zeros_for_empty_prompt: true,
    scheduler: ['diffusers', 'EulerDiscreteScheduler'], text_encoder: ['transformers', 'CLIPTextModel'],
    text_encoder_2: ['transformers', 'CLIPTextModelWithProjection'], unet: ['diffusers', 'UNet2DConditionModel'], vae: ['diffusers', 'AutoencoderKL'],
  });
  return info;
}

/* ---- child phases ---- */

async function phaseConvert({ source, outDir, component, precision, attention, latent }) {
  const { convertDiffusers } = await dist('convert/convert.js');
  const sampler = new RssSampler().every(100);
  const s = now();
  await convertDiffusers(source, { outDir, precision, attention, components: [component], latentSize: [latent, latent] });
  const seconds = now() - s;
  const mem = sampler.stop();
  const wb = path.join(outDir, PACKAGE[component], 'Data', 'com.apple.CoreML', 'weights', 'weight.bin');
  return { phase: 'convert', component, seconds, weightBinBytes: fs.existsSync(wb) ? fs.statSync(wb).size : 0, load: loadLine(), ...mem };
}

/** FLOPs of the graph's conv / conv_transpose / linear / matmul / einsum ops: 2 × output elements × contracted length. */
export function countFlops(desc) {
  const types = new Map(desc.inputs.map((i) => [i.name, i.type]));
  const shapeOf = (arg) => {
    const a = arg?.[0];
    if (!a) return undefined;
    if ('value' in a) return a.value.shape;
    return types.get(a.name)?.shape ?? undefined;
  };
  const byType = {};
  const add = (t, f) => { byType[t] = (byType[t] ?? 0) + f; };
  const walk = (block) => {
    for (const op of block.ops) {
      for (const o of op.outputs) types.set(o.name, o.type);
      const out = op.outputs[0]?.type.shape;
      if (!out || out.some((d) => d < 0)) { for (const b of op.blocks) walk(b); continue; }
      if (op.type === 'conv') {
        const w = shapeOf(op.inputs.weight); // [Cout, Cin/groups, kh, kw]
        if (w) add('conv', 2 * numel(out) * numel(w.slice(1)));
      } else if (op.type === 'conv_transpose') {
        const w = shapeOf(op.inputs.weight), x = shapeOf(op.inputs.x); // weight [Cin, Cout/groups, kh, kw]
        if (w && x) add('conv_transpose', 2 * numel(x) * numel(w.slice(1)));
      } else if (op.type === 'linear') {
        const w = shapeOf(op.inputs.weight);
        if (w) add('linear', 2 * numel(out) * w[1]);
      } else if (op.type === 'matmul') {
        // x's matrix is M×K or (transpose_x) K×M, M = out's rows: K follows without reading transpose_x (a named const).
        const x = shapeOf(op.inputs.x);
        if (x) add('matmul', 2 * numel(out) * (x.length === 1 ? x[0] : out.length < 2 ? x.at(-1) : (x.at(-1) * x.at(-2)) / out.at(-2)));
      } else if (op.type === 'einsum') {
        const eq = op.attributes.equation?.strings?.[0] ?? op.inputs.equation?.[0]?.value?.strings?.[0];
        const values = op.inputs.values ?? [];
        if (eq) {
          const [lhs, rhs] = eq.replace(/\s/g, '').split('->');
          const dims = new Map();
          lhs.split(',').forEach((term, i) => { const s = shapeOf([values[i]]); if (s) [...term].forEach((ch, j) => dims.set(ch, s[j])); });
          let k = 1;
          for (const [ch, d] of dims) if (!rhs.includes(ch)) k *= d;
          add('einsum', 2 * numel(out) * k);
        }
      }
      for (const b of op.blocks) walk(b);
    }
  };
  walk(desc.block);
  return { total: Object.values(byType).reduce((a, b) => a + b, 0), byType };
}

/** Deterministic N(0, 1) (Box–Muller over a 32-bit LCG): the inputs are data, not randomness. */
function gaussian(n, seed, scale = 1) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  const u = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return (s + 1) / 4294967297; };
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u())), a = 2 * Math.PI * u();
    out[i] = scale * r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = scale * r * Math.sin(a);
  }
  return out;
}

function inputFor({ name, dtype, shape }, latent) {
  const n = numel(shape);
  let data;
  if (name === 'input_ids') { // "<bos> a cat in a tuxedo , oil on canvas <eos>" padded: real-looking token ids
    const ids = [49406, 320, 2368, 530, 320, 42651, 267, 2870, 525, 10012, 49407];
    data = new Int32Array(n).fill(49407);
    ids.forEach((v, i) => { data[i] = v; });
    if (dtype !== 'int32') data = Float32Array.from(data);
  } else if (name === 'timestep') data = new Float32Array(n).fill(981);
  else if (name === 'time_ids') { const img = latent * 8; data = new Float32Array(n); for (let b = 0; b < n / 6; b++) data.set([img, img, 0, 0, img, img], 6 * b); }
  else data = gaussian(n, seedOf(name));
  return { data, shape };
}

async function phasePredict({ pkg, threads, latent, runs = 1 }) {
  const { loadModel } = await dist('index.js');
  const { createExecutor, lowerProgram, executorModelOf } = await dist('runtime/executor.js');
  const { setThreads } = await dist('native.js');
  setThreads(threads);
  const sampler = new RssSampler().every(100);
  const s0 = now();
  const model = await loadModel(pkg);
  const exec = createExecutor(model);
  const loadSeconds = now() - s0;
  const flops = countFlops(lowerProgram(executorModelOf(model)));
  const inputs = Object.fromEntries(exec.inputs.map((i) => [i.name, inputFor(i, latent)]));
  const loadAtStart = loadLine();
  const s = now();
  const out = await exec.predict(inputs);
  const seconds = now() - s;
  const warm = [];
  for (let r = 1; r < runs; r++) {
    const w = now();
    await exec.predict(inputs);
    warm.push(now() - w);
  }
  warm.sort((a, b) => a - b);
  const warmSeconds = warm.length ? warm[(warm.length - 1) >> 1] : undefined;
  const outputs = {};
  for (const [k, v] of Object.entries(out)) {
    const d = v.data ?? v;
    let nonFinite = 0, maxAbs = 0;
    for (let i = 0; i < d.length; i++) { const x = Number(d[i]); if (!Number.isFinite(x)) nonFinite++; else if (Math.abs(x) > maxAbs) maxAbs = Math.abs(x); }
    outputs[k] = { shape: v.shape, nonFinite, maxAbs };
  }
  const mem = sampler.stop();
  return { phase: 'predict', seconds, warmSeconds, loadSeconds, flops: flops.total, flopsByType: flops.byType, inputs: exec.inputs.map((i) => `${i.name} ${i.dtype}[${i.shape}]`), outputs, load: `${loadAtStart} → ${loadLine()}`, ...mem };
}

async function phaseGemm({ threads }) {
  const { nativeAddon } = await dist('native.js');
  const r = await nativeAddon().gemmBenchmark({ m: 2048, n: 2048, k: 2048, repeats: 3, threads });
  return { phase: 'gemm', ...r, load: loadLine() };
}

/** PyTorch's time for the same components (bench/diffusers_torch.py), or {} when torch is not importable. */
function torchTimes(components, { latent, threads, runs }) {
  const wanted = components.filter((c) => c === 'unet' || c === 'vae_decoder');
  if (!wanted.length) return {};
  for (const py of ['python3', '/usr/bin/python3']) {
    if (spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0) continue;
    process.stderr.write(`  PyTorch ${wanted.join(', ')} (load ${loadLine()})\n`);
    const r = spawnSync(py, [path.join(path.dirname(SELF), 'diffusers_torch.py'), '--model', 'sdxl', '--latent', String(latent), '--batch', '2',
      '--threads', String(threads), '--runs', String(Math.max(1, runs - 1)), '--components', wanted.join(',')], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) { console.error(`diffusers_torch.py failed: ${r.stderr.trim().split('\n').pop()}`); return {}; }
    const out = {};
    for (const line of r.stdout.trim().split('\n')) { const j = JSON.parse(line); out[j.component] = { ...j, py }; }
    return out;
  }
  return {};
}

/* ---- driver ---- */

async function main() {
  const args = parseArgs();
  if (args.phase) {
    const p = JSON.parse(args.params);
    const r = args.phase === 'convert' ? await phaseConvert(p) : args.phase === 'predict' ? await phasePredict(p) : await phaseGemm(p);
    console.log(JSON.stringify(r));
    return;
  }
  const latent = Number(args.latent ?? 64);
  const precision = args.precision ?? 'fp32';
  const attention = args.attention ?? 'original';
  const threads = Number(args.threads ?? 2);
  const runs = Math.max(1, Number(args.runs ?? 1));
  const components = args.components ? String(args.components).split(',') : COMPONENTS;
  for (const c of components) if (!COMPONENTS.includes(c)) throw new Error(`--components: unknown '${c}' (${COMPONENTS.join(', ')})`);
  const work = path.resolve(args.out ?? DEFAULT_WORK_DIR);
  const source = path.join(work, 'sdxl-pipeline-diffusers');
  const outDir = path.join(work, `sdxl-pipeline-converted-${precision}-${attention}-${latent}`);
  const log = (s) => console.log(s);
  log(`# pipeline: synthetic full-size SDXL base, convert ${precision} / attention ${attention}, UNet latent ${latent}×${latent} batch 2, executor ${threads} threads`);
  log(`# machine: ${machineLine()}`);

  let gen;
  if (args.reuse && fs.existsSync(path.join(source, 'model_index.json'))) gen = { reused: true };
  else {
    fs.rmSync(source, { recursive: true, force: true });
    gen = await writeSdxlFolder(source, components);
  }
  process.stderr.write(`  synthetic diffusers folder ready (load ${loadLine()})\n`);
  const child = (phase, params) => runChild(SELF, ['--phase', phase, '--params', JSON.stringify(params)]);

  const conv = {}, pred = {};
  for (const c of components) {
    process.stderr.write(`  converting ${c} (load ${loadLine()})\n`);
    conv[c] = await child('convert', { source, outDir, component: c, precision, attention, latent });
  }
  process.stderr.write(`  sgemm 2048³ (load ${loadLine()})\n`);
  const gemm = await child('gemm', { threads });
  for (const c of components) {
    process.stderr.write(`  predict ${c} (load ${loadLine()})\n`);
    pred[c] = await child('predict', { pkg: path.join(outDir, PACKAGE[c]), threads, latent, runs });
  }
  const torch = args['no-torch'] ? {} : torchTimes(components, { latent, threads, runs });
  const result = { latent, precision, attention, threads, runs, machine: machineLine(), generate: gen, convert: conv, gemm, predict: pred, torch };
  if (args.json) console.log(JSON.stringify(result));

  log('');
  log(`same-run SGEMM peak: 2048³ through the executor's GEMM path (${gemm.blas}), ${threads} threads: ${gemm.gflops.toFixed(1)} GFLOP/s (load ${gemm.load})`);
  log('');
  const best = (p) => p.warmSeconds ?? p.seconds;
  const rows = [];
  for (const c of components) {
    const g = gen[c];
    const cv = conv[c], p = pred[c];
    rows.push([
      c,
      g ? `${g.weights.toLocaleString('en-US')} w, ${fmtGB(g.bytes)} F16, ${fmtSec(g.seconds)}` : 'reused',
      `${fmtSec(cv.seconds)}, ${fmtMiB(cv.peakHwm)}, ${fmtGB(cv.weightBinBytes)}`,
      p.warmSeconds === undefined ? fmtSec(p.seconds) : `${fmtSec(p.seconds)} / ${fmtSec(p.warmSeconds)}`,
      `${(p.flops / 1e9).toFixed(1)}`,
      `${(p.flops / best(p) / 1e9).toFixed(1)} (${((100 * p.flops) / best(p) / 1e9 / gemm.gflops).toFixed(0)} %)`,
      fmtMiB(p.peakHwm),
      torch[c] ? `${fmtSec(torch[c].seconds)}, ${fmtMiB(torch[c].peak_rss_mib * 1048576)} (${(best(p) / torch[c].seconds).toFixed(2)}×)` : '-',
      Object.values(p.outputs).every((o) => o.nonFinite === 0) ? 'finite' : 'NON-FINITE',
      p.load,
    ]);
  }
  printTable(['component', 'synthetic source', 'convert (time, peak RSS, weight.bin)', runs > 1 ? 'predict cold / warm' : 'predict', 'GFLOP', 'GFLOP/s (% of SGEMM)', 'predict peak RSS', 'PyTorch same run (peak RSS, ours/torch)', 'outputs', 'load avg at predict'], rows);
  for (const c of components) log(`  ${c}: inputs ${pred[c].inputs.join(', ')}; load ${fmtSec(pred[c].loadSeconds)}; outputs ${Object.entries(pred[c].outputs).map(([k, o]) => `${k}[${o.shape}] max|x| ${o.maxAbs.toPrecision(3)}`).join(', ')}; FLOPs ${Object.entries(pred[c].flopsByType).map(([k, v]) => `${k} ${(v / 1e9).toFixed(1)}G`).join(', ')}`);
  if (!args.keep) {
    fs.rmSync(outDir, { recursive: true, force: true });
    if (!args.reuse) fs.rmSync(source, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) main().catch((err) => { console.error(err); process.exit(1); });
