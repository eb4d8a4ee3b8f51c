#!/usr/bin/env node
/**
 * Apple's whole SparseGPT recipe on a synthetic SDXL UNet: SparseGPT 40 % on `down_blocks.\d+`,
 * `mid_block`, `up_blocks.\d+` (sequential, as coremltools' LayerwiseCompressor) followed by 4-bit
 * per_grouped_channel gs16 palettization with joint_compression — one `compressModel` plan.
 *
 * The UNet is the real graph: a diffusers folder with synthetic safetensors of the published SDXL
 * base shapes (../shared/models/sdxl_unet_weights.json) and its config, converted with
 * convertDiffusers (fp16, iOS18) — bench/generate-unet.mjs writes the same weights but not the UNet
 * topology, so its model cannot be calibrated. It can be scaled down for a shared machine:
 *   --width F                channels × F (0.5: block_out_channels [160, 320, 640]; every layer
 *                            shape derived from the published one, names unchanged);
 *   --transformer-layers A,B,C  transformer blocks per level (SDXL: 1,2,10); the kept blocks keep
 *                            their published names and shapes.
 * Calibration: N synthetic samples (random latents, timesteps, text embeddings of the UNet's input
 * shapes; time_ids of the image size), batch 2 as ml-stable-diffusion converts the SDXL UNet.
 *
 * Reported (each phase in a fresh child process, so peaks are separate): synthetic weights write,
 * conversion, and the recipe: time split into forward (sub-program runs with Hessian capture and the
 * compressed replays), Hessian (estimated: forward minus the same number of plain UNet passes,
 * measured in a child of its own before the recipe's), prune (SparseGPT per layer: Cholesky, masks, updates, errors),
 * write (sparse weights), palettize (the joint 4-bit pass), with peak RSS (and where the recipe
 * was when it peaked), the largest Hessian wave and the boundary cache, and how --max-memory was split
 * (Hessians, boundary cache, executor weight caches, activations, mapped weights, prune step) with
 * each part's measured peak.
 *
 *   node bench/sparsegpt-recipe.mjs [--n 4] [--latent 64] [--width 1] [--transformer-layers 1,2,10]
 *        [--sparsity 0.4] [--max-memory GB] [--mode sequential|oneshot] [--threads N] [--out DIR] [--keep] [--json]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_WORK_DIR, MODELS_DIR, machineLine, memoryStatus, RssSampler, fmtGB, fmtMiB, fmtSec, now, parseArgs, printTable, runChild, seedOf } from './lib/common.mjs';
import { numel, writeSyntheticSafetensors } from './lib/synthetic-safetensors.mjs';

const dist = (p) => import(new URL(`../dist/${p}`, import.meta.url).href);
const SELF = fileURLToPath(import.meta.url);
/** Every dimension of the published SDXL shapes that is a multiple of the channel widths. */
const CHANNEL_DIMS = new Set([320, 640, 960, 1280, 1920, 2560, 5120, 10240]);
const APPLE_LAYERS = ['down_blocks.\\d+', 'mid_block', 'up_blocks.\\d+'];

/** The SDXL shape list scaled: channel dims × width, transformer blocks per level cut to `layers`. */
export function scaledSdxl(width, layers) {
  const json = JSON.parse(fs.readFileSync(path.join(MODELS_DIR, 'sdxl_unet_weights.json'), 'utf8'));
  const levels = json.config.block_out_channels.length;
  const scale = (d) => {
    if (!CHANNEL_DIMS.has(d)) return d;
    const s = d * width;
    if (!Number.isInteger(s)) throw new Error(`--width ${width} does not scale ${d} to an integer`);
    return s;
  };
  const levelOf = (name) => {
    let m = /^down_blocks\.(\d+)\.attentions\.\d+\.transformer_blocks\.(\d+)\./.exec(name);
    if (m) return [Number(m[1]), Number(m[2])];
    m = /^up_blocks\.(\d+)\.attentions\.\d+\.transformer_blocks\.(\d+)\./.exec(name);
    if (m) return [levels - 1 - Number(m[1]), Number(m[2])];
    m = /^mid_block\.attentions\.\d+\.transformer_blocks\.(\d+)\./.exec(name);
    if (m) return [levels - 1, Number(m[1])];
    return null;
  };
  const tensors = json.tensors
    .filter((t) => {
      const l = levelOf(t.name);
      return !l || l[1] < layers[l[0]];
    })
    .map((t) => ({ name: t.name, shape: t.shape.map(scale) }));
  const config = {
    ...json.config,
    block_out_channels: json.config.block_out_channels.map(scale),
    transformer_layers_per_block: layers,
    // Group norm's parameter shapes do not depend on the group count: below width 0.5 the 32 groups
    // no longer divide the channels, so take the largest count ≤ 32 that does.
    norm_num_groups: [32, 16, 8, 4, 2, 1].find((g) => scale(320) % g === 0),
  };
  return { config, tensors };
}

/** A diffusers folder (model_index, unet config + synthetic F16 safetensors, vae and scheduler configs). */
async function writeSyntheticPipeline(dir, { config, tensors }, latent) {
  for (const d of ['unet', 'vae', 'scheduler']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const json = (f, v) => fs.writeFileSync(path.join(dir, f), JSON.stringify(v, null, 1));
  json('model_index.json', {
    _class_name: 'StableDiffusionXLPipeline', _diffusers_version: '0.25.1', force_zeros_for_empty_prompt: true,
    scheduler: ['diffusers', 'EulerDiscreteScheduler'], unet: ['diffusers', 'UNet2DConditionModel'], vae: ['diffusers', 'AutoencoderKL'],
  });
  json('unet/config.json', { _class_name: 'UNet2DConditionModel', _diffusers_version: '0.25.1', ...config, sample_size: latent });
  json('vae/config.json', {
    _class_name: 'AutoencoderKL', block_out_channels: [128, 256, 512, 512], down_block_types: Array(4).fill('DownEncoderBlock2D'),
    up_block_types: Array(4).fill('UpDecoderBlock2D'), latent_channels: 4, layers_per_block: 2, norm_num_groups: 32, sample_size: latent * 8,
    scaling_factor: 0.13025, force_upcast: true,
  });
  json('scheduler/scheduler_config.json', {
    _class_name: 'EulerDiscreteScheduler', beta_end: 0.012, beta_schedule: 'scaled_linear', beta_start: 0.00085,
    num_train_timesteps: 1000, prediction_type: 'epsilon', steps_offset: 1, timestep_spacing: 'leading',
  });
  const bytes = await writeSyntheticSafetensors(path.join(dir, 'unet', 'diffusion_pytorch_model.safetensors'), tensors);
  return { bytes, tensors: tensors.length, weights: tensors.reduce((a, t) => a + numel(t.shape), 0) };
}

/** Box–Muller normals from a small xorshift (deterministic per seed). */
function normals(count, seed, scale = 1) {
  let x = seed >>> 0 || 1;
  const u = () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return (x + 0.5) / 4294967296;
  };
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = scale * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

/** N sample folders of the UNet's inputs: latents N(0, σ_t²)-ish, timesteps in [0, 1000), embeddings N(0, 1). */
async function writeCalibration(dir, inputs, n, latent) {
  const { writeNpy } = await dist('runtime/npy.js');
  for (let s = 0; s < n; s++) {
    const sdir = path.join(dir, `sample_${String(s).padStart(3, '0')}`);
    fs.mkdirSync(sdir, { recursive: true });
    const t = Math.floor(((s + 0.5) / n) * 1000);
    for (const input of inputs) {
      const shape = input.shape;
      let data;
      if (input.name === 'timestep') data = new Float32Array(numel(shape)).fill(t);
      else if (input.name === 'time_ids') data = Float32Array.from({ length: numel(shape) }, (_, i) => [latent * 8, latent * 8, 0, 0, latent * 8, latent * 8][i % 6]);
      else data = normals(numel(shape), seedOf(`${input.name}/${s}`), input.name === 'sample' ? 1 + t / 100 : 1);
      writeNpy(path.join(sdir, `${input.name}.npy`), { dtype: 'float32', shape, data });
    }
  }
}

async function phaseConvert(source, outDir, latent) {
  const { convertDiffusers } = await dist('convert/convert.js');
  const sampler = new RssSampler().every(200);
  const s = now();
  const r = await convertDiffusers(source, { outDir, precision: 'fp16', components: ['unet'], specVersion: 9, latentSize: [latent, latent] });
  return { phase: 'convert', seconds: now() - s, unet: r.packages.unet, ...sampler.stop() };
}

/**
 * Plain forward passes of the whole UNet over the samples: the executor's share of the capture runs.
 * A child of its own: the whole-UNet executor (its weight caches and pooled buffers: ~650 MiB at
 * quarter width) is not freed by a GC in time, and in the recipe's process it sat under the recipe's peak.
 */
async function phaseForward(unetPath, calibration, opts) {
  const { loadModel } = await dist('model.js');
  const { createExecutor } = await dist('runtime/executor.js');
  const { readNpy } = await dist('runtime/npy.js');
  const threads = opts.threads ? Number(opts.threads) : undefined;
  const model = await loadModel(unetPath);
  const samples = fs.readdirSync(calibration).sort();
  const exec = createExecutor(model);
  const t0 = now();
  for (const s of samples) {
    const inputs = {};
    for (const i of exec.inputs) {
      const a = readNpy(path.join(calibration, s, `${i.name}.npy`));
      inputs[i.name] = { data: a.data, shape: a.shape, dtype: 'fp32' };
    }
    await exec.predict(inputs, threads ? { threads } : {});
  }
  return { phase: 'forward', plainForward: now() - t0, forwardHwm: memoryStatus().hwm };
}

async function phaseRecipe(unetPath, calibration, opts) {
  const { loadModel } = await dist('model.js');
  const { compressModel } = await dist('optimize/compress.js');
  const threads = opts.threads ? Number(opts.threads) : undefined;
  const model = await loadModel(unetPath);
  const samples = fs.readdirSync(calibration).sort();
  const { plainForward, forwardHwm } = opts;
  const recipeStartRss = memoryStatus().rss;
  const sampler = new RssSampler().every(200);
  // Where the recipe was when its RSS peaked (step and progress), sampled with the sampler's period.
  let where = 'start', peakWhere = where, peakSeen = 0;
  const watcher = setInterval(() => {
    const rss = memoryStatus().rss ?? 0;
    if (rss > peakSeen) [peakSeen, peakWhere] = [rss, where];
  }, 200);
  watcher.unref();
  const steps = [];
  let stepStart = now();
  let lastPct = -1;
  const started = now();
  const out = await compressModel(model, {
    steps: [
      {
        api: 'sparsegpt', mode: opts.mode, calibration,
        config: { global_config: { algorithm: 'sparse_gpt', target_sparsity: opts.sparsity }, layers: APPLE_LAYERS, calibration_nsamples: samples.length },
      },
      { api: 'palettize', joint_compression: true, config: { config_type: 'OpPalettizerConfig', global_config: { nbits: 4, granularity: 'per_grouped_channel', group_size: 16 } } },
    ],
  }, {
    ...(threads ? { threads } : {}),
    ...(opts.maxMemory ? { maxMemory: opts.maxMemory } : {}),
    onStep: (i, _n, api) => {
      if (i > 0) steps.push(now() - stepStart);
      stepStart = now();
      lastPct = -1;
      where = `step ${i + 1} (${api})`;
      process.stderr.write(`  step ${i + 1}: ${api}\n`);
    },
    onProgress: (done, total) => {
      const pct = Math.floor((10 * done) / total);
      where = `${where.replace(/ at .*$/, '')} at ${(100 * done / total).toFixed(0)}%`;
      if (pct !== lastPct) { lastPct = pct; process.stderr.write(`    ${(100 * done / total).toFixed(0)}% (${fmtSec(now() - started)})\n`); }
    },
  });
  steps.push(now() - stepStart);
  const total = now() - started;
  const mem = sampler.stop();
  clearInterval(watcher);
  const lw = out.steps[0].layerwise;
  const compressed = lw.ops.filter((o) => o.status === 'compressed');
  const weightBin = path.join(out.path ?? '', 'Data', 'com.apple.CoreML', 'weights', 'weight.bin');
  const maxCols = Math.max(...compressed.map((o) => o.hessianColumns ?? 0));
  const result = {
    phase: 'recipe', total, plainForward, forwardHwm, recipeStartRss, peakWhere, samples: samples.length, stepSeconds: steps, layerwise: lw.seconds, waves: lw.waves,
    peakHessianBytes: lw.peakHessianBytes, cachePeakBytes: lw.cachePeakBytes, cacheSpilledBytes: lw.cacheSpilledBytes, maxMemory: lw.maxMemory,
    memory: lw.memory,
    layers: lw.layers.map((l) => ({ key: l.key, ops: l.ops.length })), compressedOps: compressed.length, maxColumns: maxCols,
    meanSparsity: compressed.reduce((a, o) => a + o.sparsity, 0) / compressed.length,
    meanErrorRatio: compressed.reduce((a, o) => a + o.error / Math.max(o.baselineError, 1e-30), 0) / compressed.length,
    sparseToDense: out.steps[1].weights.filter((w) => w.status === 'compressed').length,
    ...mem,
  };
  try { result.outputBytes = fs.statSync(weightBin).size; } catch { /* unsaved model: no size */ }
  out.dispose?.();
  return result;
}

async function main() {
  const args = parseArgs();
  if (args.phase === 'convert') {
    console.log(JSON.stringify(await phaseConvert(args.source, args['out-dir'], Number(args.latent))));
    return;
  }
  if (args.phase === 'forward') {
    console.log(JSON.stringify(await phaseForward(args.unet, args.calibration, { threads: args.threads })));
    return;
  }
  if (args.phase === 'recipe') {
    console.log(JSON.stringify(await phaseRecipe(args.unet, args.calibration, {
      threads: args.threads, mode: args.mode, sparsity: Number(args.sparsity), maxMemory: args['max-memory'] ? Number(args['max-memory']) : undefined,
      plainForward: Number(args['plain-forward']), forwardHwm: Number(args['forward-hwm']),
    })));
    return;
  }
  const n = Number(args.n ?? 4);
  const latent = Number(args.latent ?? 64);
  const width = Number(args.width ?? 1);
  const layers = String(args['transformer-layers'] ?? '1,2,10').split(',').map(Number);
  const sparsity = Number(args.sparsity ?? 0.4);
  const mode = args.mode ?? 'sequential';
  const maxMemory = args['max-memory'] ? Math.floor(Number(args['max-memory']) * 1e9) : undefined;
  if (!(n >= 1) || !(latent >= 8) || !(width > 0 && width <= 1) || layers.length !== 3 || !layers.every((l) => Number.isInteger(l) && l >= 1)) {
    throw new Error('--n ≥ 1, --latent ≥ 8, --width in (0, 1], --transformer-layers A,B,C (≥ 1 each)');
  }
  const work = path.resolve(args.out ?? DEFAULT_WORK_DIR, `sparsegpt-recipe-w${width}-t${layers.join('_')}-l${latent}`);
  fs.rmSync(work, { recursive: true, force: true });
  const log = (s) => console.log(s);
  const shapes = scaledSdxl(width, layers);
  log(`# SparseGPT ${sparsity * 100} % + 4-bit gs16 joint (Apple's recipe) on a synthetic SDXL UNet: width ×${width}, transformer layers [${layers}], latent ${latent}×${latent}, batch 2, ${n} calibration samples, ${mode}`);
  log(`# machine: ${machineLine()}`);

  let s = now();
  const gen = await writeSyntheticPipeline(path.join(work, 'diffusers'), shapes, latent);
  const genSeconds = now() - s;
  process.stderr.write(`  wrote ${gen.tensors} tensors (${gen.weights.toLocaleString('en-US')} weights) in ${fmtSec(genSeconds)}\n`);
  const conv = await runChild(SELF, ['--phase', 'convert', '--source', path.join(work, 'diffusers'), '--out-dir', path.join(work, 'converted'), '--latent', String(latent)]);
  fs.rmSync(path.join(work, 'diffusers'), { recursive: true, force: true });
  const { loadModel } = await dist('model.js');
  const { createExecutor } = await dist('runtime/executor.js');
  const m = await loadModel(conv.unet);
  const inputs = createExecutor(m).inputs.map((i) => ({ name: i.name, shape: i.shape }));
  m.dispose?.();
  s = now();
  await writeCalibration(path.join(work, 'calibration'), inputs, n, latent);
  const calSeconds = now() - s;
  const fwd = await runChild(SELF, ['--phase', 'forward', '--unet', conv.unet, '--calibration', path.join(work, 'calibration'), ...(args.threads ? ['--threads', String(args.threads)] : [])]);
  const rec = await runChild(SELF, ['--phase', 'recipe', '--unet', conv.unet, '--calibration', path.join(work, 'calibration'), '--mode', mode, '--sparsity', String(sparsity),
    '--plain-forward', String(fwd.plainForward), '--forward-hwm', String(fwd.forwardHwm),
    ...(args.threads ? ['--threads', String(args.threads)] : []), ...(maxMemory ? ['--max-memory', String(maxMemory)] : [])], { nodeArgs: ['--expose-gc'] });
  const lw = rec.layerwise;
  // Sequential: every sample runs each layer's sub-program once per wave with capture, and once more
  // on the compressed weights (all but the last layer): about (1 + waves/layers) plain passes.
  const passes = mode === 'oneshot' ? rec.waves : 1 + rec.waves / rec.layers.length;
  const hessian = Math.max(0, lw.forward - passes * rec.plainForward);
  const result = { width, layers, latent, n, mode, sparsity, weights: gen.weights, generateSeconds: genSeconds, calibrationSeconds: calSeconds, convert: conv, recipe: rec, hessianEstimate: hessian };
  if (args.json) console.log(JSON.stringify(result));
  log('');
  log(`UNet: ${gen.tensors} tensors, ${gen.weights.toLocaleString('en-US')} weights; layers ${rec.layers.map((l) => `${l.key} (${l.ops} ops)`).join(', ')}; largest Hessian ${rec.maxColumns} columns`);
  printTable(['phase', 'time', 'note'], [
    ['write synthetic safetensors', fmtSec(genSeconds), ''],
    ['convertDiffusers (fp16, iOS18)', fmtSec(conv.seconds), `peak RSS ${fmtMiB(conv.peakHwm)}`],
    ['plain UNet forward × N (baseline)', fmtSec(rec.plainForward), `${fmtSec(rec.plainForward / n)} per sample`],
    ['recipe total', fmtSec(rec.total), `peak RSS ${fmtMiB(rec.peakHwm)} (max anon ${fmtMiB(rec.maxAnon)}, file-backed ${fmtMiB(rec.maxFile)}; ${fmtMiB(rec.recipeStartRss)} at its start, peak in ${rec.peakWhere}; the plain forward's own child ${fmtMiB(rec.forwardHwm)})`],
    ['  forward (capture + replay)', fmtSec(lw.forward), `${rec.waves} waves; includes Hessian accumulation`],
    ['    of which Hessian (est.)', fmtSec(hessian), `forward − ${passes.toFixed(2)} × plain forward`],
    ['  prune (SparseGPT per layer)', fmtSec(lw.compress), `${rec.compressedOps} ops, mean sparsity ${rec.meanSparsity.toFixed(3)}, mean error / magnitude error ${rec.meanErrorRatio.toFixed(3)}`],
    ['  write (sparse weights)', fmtSec(lw.write), ''],
    ['  palettize 4-bit gs16 (joint)', fmtSec(rec.stepSeconds[1]), `${rec.sparseToDense} weights`],
    ['  other', fmtSec(rec.total - lw.forward - lw.compress - lw.write - rec.stepSeconds[1]), 'lowering the graph, cutting sub-programs, calibration checks'],
    ['peak Hessian wave', fmtMiB(rec.peakHessianBytes), `max-memory ${fmtGB(rec.maxMemory)}; boundary cache peak ${fmtMiB(rec.cachePeakBytes)}, spilled ${fmtMiB(rec.cacheSpilledBytes)}; peak RSS / wave ${(rec.peakHwm / rec.peakHessianBytes).toFixed(2)}×`],
  ]);
  const mb = rec.memory;
  if (mb) {
    // The budget's parts (memory.ts) and what each held at its peak.
    log('');
    printTable(['max-memory part', 'budget', 'peak'], [
      ['Hessians of a wave', fmtMiB(mb.budget.hessians), fmtMiB(mb.peak.hessians)],
      ['boundary cache (in memory)', fmtMiB(mb.budget.boundaryCache), fmtMiB(mb.peak.boundaryCache)],
      ['executor weight caches', fmtMiB(mb.budget.executorCaches), fmtMiB(mb.peak.executorCaches)],
      ['executor activations (est.)', fmtMiB(mb.budget.activations), ''],
      ['sub-program weights (mapped)', fmtMiB(mb.budget.weights), ''],
      ['prune step copies (est.)', fmtMiB(mb.budget.pruneWorking), ''],
      ['bound (Hessians + cache + max(executor, prune))', fmtMiB(mb.maxMemory), fmtMiB(mb.bound)],
      ['… + the process at the recipe\'s start', '', fmtMiB(mb.bound + rec.recipeStartRss)],
    ]);
  }
  if (!args.keep) fs.rmSync(work, { recursive: true, force: true });
}

main().catch((err) => { console.error(err); process.exit(1); });
