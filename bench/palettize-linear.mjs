#!/usr/bin/env node
/**
 * 4-bit per_grouped_channel palettization of a stack of square fp16 linear layers (default 24 ×
 * 2048×2048 = 100.7 M weights, group_size 16): the issue-14 speed case. Builds the model with the
 * ProgramBuilder (synthetic weights, bench/generate-unet.mjs), then times `palettizeWeights` at each
 * thread count (best of --repeat) and prints a SHA-256 of the compressed weight.bin, so a change to
 * the k-means can be checked for identical output on the same model. Same-run baseline: the
 * plain-JS Lloyd k-means (bench/baseline-kmeans.mjs) on the first --baseline-layers layers,
 * extrapolated linearly to all layers (each layer has the same shape and weight distribution).
 *
 *   node bench/palettize-linear.mjs [--layers 24] [--size 2048] [--nbits 4] [--group-size 16]
 *       [--threads 1,2] [--repeat 2] [--baseline-layers 1 | --no-baseline] [--out DIR] [--keep]
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_WORK_DIR, fmtSec, machineLine, now, parseArgs, printTable, seedOf } from './lib/common.mjs';
import { generateUnet } from './generate-unet.mjs';
import { baselinePalettize } from './baseline-kmeans.mjs';

const dist = (p) => import(new URL(`../dist/${p}`, import.meta.url).href);
const log = (...a) => console.log(...a);

function sha256(file) {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(8 << 20);
  for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  fs.closeSync(fd);
  return h.digest('hex');
}

async function main() {
  const args = parseArgs();
  const layers = Number(args.layers ?? 24);
  const size = Number(args.size ?? 2048);
  const nbits = Number(args.nbits ?? 4);
  const groupSize = Number(args['group-size'] ?? 16);
  const threadList = String(args.threads ?? '1,2').split(',').map(Number);
  const repeat = Number(args.repeat ?? 2);
  const outDir = String(args.out ?? DEFAULT_WORK_DIR);
  const [{ loadModel }, { palettizeWeights }, { syntheticFp16 }, { halfBitsToFloatArray, floatToHalfBits, halfBitsToFloat }] = await Promise.all([
    dist('model.js'), dist('optimize/palettize.js'), dist('util/synthetic.js'), dist('mil/values.js'),
  ]);
  log(machineLine());
  const tensors = Array.from({ length: layers }, (_, i) => ({ name: `linear_${i}.weight`, shape: [size, size] }));
  const weights = layers * size * size;
  const dest = path.join(outDir, `linear-${layers}x${size}-${process.pid}.mlpackage`);
  const g = await generateUnet({ tensors, dest });
  log(`model: ${layers} × [${size}, ${size}] fp16 linear = ${weights.toLocaleString('en-US')} weights (${(g.bytes / 1e9).toFixed(3)} GB), built in ${fmtSec(g.seconds)}`);
  const model = await loadModel(dest);
  const config = { global_config: { nbits, granularity: 'per_grouped_channel', group_size: groupSize } };

  const rows = [];
  let hash;
  const best = {};
  for (const threads of threadList) {
    for (let r = 0; r < repeat; r++) {
      const s = now();
      const out = await palettizeWeights(model, config, { threads });
      const seconds = now() - s;
      const file = out.weightFilePath('@model_path/weights/weight.bin');
      const h = sha256(file);
      if (hash !== undefined && h !== hash) log(`!! weight.bin differs between runs (${threads} threads)`);
      hash = h;
      if (!best[threads] || seconds < best[threads]) best[threads] = seconds;
    }
    rows.push([String(threads), fmtSec(best[threads]), `${((best[threads] * 1e9) / weights).toFixed(1)} ns`]);
  }

  let baseline;
  if (!args['no-baseline']) {
    const bl = Math.min(layers, Number(args['baseline-layers'] ?? 1));
    const toFp16 = (v) => halfBitsToFloat(floatToHalfBits(v));
    let seconds = 0;
    for (const t of tensors.slice(0, bl)) {
      const v = Float32Array.from(halfBitsToFloatArray(syntheticFp16({ count: size * size, kind: 'weight', fanIn: size, seed: seedOf(t.name) })));
      const s = now();
      baselinePalettize(v, t.shape, { nbits, groupSize, seed: 1, toFp16 });
      seconds += now() - s;
    }
    baseline = (seconds * layers) / bl;
    log(`baseline: plain-JS Lloyd + k-means++ (1 thread) on ${bl} layer(s): ${fmtSec(seconds)}, ×${layers / bl} = ${fmtSec(baseline)} for the model`);
    for (const row of rows) row.push(`${(baseline / best[Number(row[0])]).toFixed(1)}×`);
  }
  printTable(['threads', `palettize ${nbits}-bit gs${groupSize} (best of ${repeat})`, 'per weight', ...(baseline ? ['vs JS Lloyd'] : [])], rows);
  log(`compressed weight.bin SHA-256: ${hash}`);
  if (!args.keep) fs.rmSync(dest, { recursive: true, force: true });
}

main().catch((e) => { console.error(e); process.exit(1); });
