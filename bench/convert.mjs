#!/usr/bin/env node
/**
 * Conversion benchmark: a full-size synthetic diffusers UNet (SDXL base: 1,680 tensors, 2.57 B
 * weights; or SD 1.5) written as `unet/diffusion_pytorch_model.safetensors` (F16, or F32 / BF16 with
 * --source-dtype) from the layer-shape lists in ../shared/models, then `convertDiffusers` on it
 * (components: unet) in a fresh child process: time, peak RSS (VmHWM) and the largest anonymous /
 * file-backed RSS seen, against a plain-copy baseline of the same file (read + write the bytes,
 * the I/O floor of any converter) measured in the same run.
 *
 *   node bench/convert.mjs [--model sdxl|sd15] [--source-dtype F16|F32|BF16] [--precision fp16|fp32]
 *                          [--attention split_einsum|original] [--out DIR] [--keep] [--json]
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_WORK_DIR, MODELS_DIR, machineLine, RssSampler, fmtGB, fmtMiB, fmtSec, memoryStatus, now, parseArgs, printTable, runChild } from './lib/common.mjs';
import { numel, writeSyntheticSafetensors } from './lib/synthetic-safetensors.mjs';

const dist = (p) => import(new URL(`../dist/${p}`, import.meta.url).href);
const SELF = fileURLToPath(import.meta.url);

/** A diffusers folder with model_index.json, unet/ (config + synthetic safetensors), vae/ and scheduler/ configs. */
export async function writeSyntheticPipeline(dir, model, sourceDtype) {
  const shapes = JSON.parse(fs.readFileSync(path.join(MODELS_DIR, `${model}_unet_weights.json`), 'utf8'));
  const xl = model === 'sdxl';
  fs.mkdirSync(path.join(dir, 'unet'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'vae'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'scheduler'), { recursive: true });
  const json = (f, v) => fs.writeFileSync(path.join(dir, f), JSON.stringify(v, null, 1));
  json('model_index.json', {
    _class_name: xl ? 'StableDiffusionXLPipeline' : 'StableDiffusionPipeline', _diffusers_version: '0.25.1',
    ...(xl ? { force_zeros_for_empty_prompt: true } : {}),
    scheduler: ['diffusers', xl ? 'EulerDiscreteScheduler' : 'PNDMScheduler'], unet: ['diffusers', 'UNet2DConditionModel'], vae: ['diffusers', 'AutoencoderKL'],
  });
  json('unet/config.json', { _class_name: 'UNet2DConditionModel', _diffusers_version: '0.25.1', ...shapes.config });
  json('vae/config.json', {
    _class_name: 'AutoencoderKL', block_out_channels: [128, 256, 512, 512], down_block_types: Array(4).fill('DownEncoderBlock2D'),
    up_block_types: Array(4).fill('UpDecoderBlock2D'), latent_channels: 4, layers_per_block: 2, norm_num_groups: 32, sample_size: xl ? 1024 : 512,
    scaling_factor: xl ? 0.13025 : 0.18215, force_upcast: true,
  });
  json('scheduler/scheduler_config.json', {
    _class_name: xl ? 'EulerDiscreteScheduler' : 'PNDMScheduler', beta_end: 0.012, beta_schedule: 'scaled_linear', beta_start: 0.00085,
    num_train_timesteps: 1000, prediction_type: 'epsilon', steps_offset: 1, timestep_spacing: 'leading', skip_prk_steps: true,
  });

  const file = path.join(dir, 'unet', 'diffusion_pytorch_model.safetensors');
  const bytes = await writeSyntheticSafetensors(file, shapes.tensors, sourceDtype, { fsync: true });
  return { file, bytes, tensors: shapes.tensors.length, weights: shapes.tensors.reduce((a, t) => a + numel(t.shape), 0) };
}

/** The I/O floor: read the safetensors file and write the same bytes (8 MiB chunks, fsync). */
function plainCopy(from, to) {
  const s = now();
  const fin = fs.openSync(from, 'r');
  const fout = fs.openSync(to, 'w');
  const buf = Buffer.alloc(8 << 20);
  let pos = 0;
  for (;;) {
    const n = fs.readSync(fin, buf, 0, buf.length, pos);
    if (n === 0) break;
    fs.writeSync(fout, buf, 0, n);
    pos += n;
  }
  fs.fsyncSync(fout);
  fs.closeSync(fin);
  fs.closeSync(fout);
  const seconds = now() - s;
  fs.rmSync(to, { force: true });
  return { seconds, bytes: pos };
}

async function phaseConvert(source, outDir, precision, attention) {
  const { convertDiffusers } = await dist('convert/convert.js');
  const sampler = new RssSampler().every(100);
  const before = memoryStatus();
  const s = now();
  let lastPct = -1;
  const r = await convertDiffusers(source, {
    outDir, precision, attention, components: ['unet'],
    onProgress: (done, total) => {
      const pct = Math.floor((10 * done) / total);
      if (pct !== lastPct) { lastPct = pct; process.stderr.write(`  converted ${(100 * done / total).toFixed(0)}% of the weights\n`); }
    },
  });
  // Model.save finishes with an fsync-free rename; time to durable bytes is what a user waits for.
  const seconds = now() - s;
  const mem = sampler.stop();
  const weightBin = path.join(r.packages.unet, 'Data', 'com.apple.CoreML', 'weights', 'weight.bin');
  return { phase: 'convert', seconds, weightBinBytes: fs.statSync(weightBin).size, rssBefore: before.rss, ...mem };
}

async function main() {
  const args = parseArgs();
  if (args.phase === 'convert') {
    console.log(JSON.stringify(await phaseConvert(args.source, args['out-dir'], args.precision, args.attention)));
    return;
  }
  const model = args.model ?? 'sdxl';
  const sourceDtype = args['source-dtype'] ?? 'F16';
  const precision = args.precision ?? 'fp16';
  const attention = args.attention ?? 'split_einsum';
  if (!['sdxl', 'sd15'].includes(model) || !WIDTH[sourceDtype]) throw new Error('--model sdxl|sd15, --source-dtype F16|F32|BF16');
  const work = path.resolve(args.out ?? DEFAULT_WORK_DIR);
  const source = path.join(work, `${model}-diffusers-${sourceDtype}`);
  const outDir = path.join(work, `${model}-converted-${precision}-${attention}`);
  const log = (s) => console.log(s);
  log(`# convert: synthetic ${model} UNet, safetensors ${sourceDtype} → ${precision}, attention ${attention}`);
  log(`# machine: ${machineLine()}`);

  const genStart = now();
  const gen = fs.existsSync(path.join(source, 'unet', 'diffusion_pytorch_model.safetensors')) && args.reuse
    ? { reused: true, bytes: fs.statSync(path.join(source, 'unet', 'diffusion_pytorch_model.safetensors')).size }
    : await writeSyntheticPipeline(source, model, sourceDtype);
  const genSeconds = now() - genStart;
  process.stderr.write(`  wrote ${fmtGB(gen.bytes)} of safetensors in ${fmtSec(genSeconds)}\n`);
  const copy = plainCopy(path.join(source, 'unet', 'diffusion_pytorch_model.safetensors'), path.join(work, 'plain-copy-baseline.tmp'));
  const conv = await runChild(SELF, ['--phase', 'convert', '--source', source, '--out-dir', outDir, '--precision', precision, '--attention', attention]);
  const result = { model, sourceDtype, precision, attention, safetensorsBytes: gen.bytes, generateSeconds: genSeconds, plainCopy: copy, convert: conv };
  if (args.json) console.log(JSON.stringify(result));
  log('');
  const mbps = (b, s) => `${(b / s / 1e6).toFixed(0)} MB/s`;
  printTable(['phase', 'time', 'throughput', 'peak RSS (VmHWM)', 'note'], [
    ['write synthetic safetensors', fmtSec(genSeconds), mbps(gen.bytes, genSeconds), '', gen.reused ? 'reused' : `${gen.tensors} tensors, ${gen.weights.toLocaleString('en-US')} weights`],
    ['plain copy of the file (baseline)', fmtSec(copy.seconds), mbps(copy.bytes, copy.seconds), '', 'read + write + fsync, 8 MiB chunks'],
    ['convertDiffusers (unet)', fmtSec(conv.seconds), mbps(gen.bytes, conv.seconds), fmtMiB(conv.peakHwm), `max anon ${fmtMiB(conv.maxAnon)}, max file-backed ${fmtMiB(conv.maxFile)}; weight.bin ${fmtGB(conv.weightBinBytes)}`],
  ]);
  if (!args.keep) {
    fs.rmSync(outDir, { recursive: true, force: true });
    if (!args.reuse) fs.rmSync(source, { recursive: true, force: true });
  }
}

// Run only as a script (bench/pipeline.mjs imports writeSyntheticPipeline).
if (process.argv[1] && path.resolve(process.argv[1]) === SELF) main().catch((err) => { console.error(err); process.exit(1); });
