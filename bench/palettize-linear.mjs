#!/usr/bin/env node
/**
 * 4-bit per_grouped_channel palettization of a stack of square fp16 linear layers (default 24 ×
 * 2048×2048 = 100.7 M weights, group_size 16): the issue-14 speed case. Builds the model with the
 * ProgramBuilder (synthetic weights, bench/generate-unet.mjs), then times `palettizeWeights` at each
 * thread count (best of --repeat) and prints a SHA-256 of the compressed weight.bin, so a change to
 * the k-means can be checked for identical output on the same model. Same-run baseline: the
 * plain-JS Lloyd k-means (bench/baseline-kmeans.mjs) on the first --baseline-layers layers,
 * extrapolated linearly to all layers (each layer has the same shape and weight distribution).
 * Second same-run baseline (if g++ is available): coremltools 9.0's per-group k-means work
 * (np.unique + kmeans1d's weighted SMAWK DP, groups over a 2-worker pool) re-implemented in C++
 * (bench/kmeans1d_coremltools.cc), on the first --ct-layers layers read back from the built model,
 * at 2 threads, extrapolated the same way. It leaves out Python, numpy, ctypes and
 * multiprocessing overheads, so it is a lower bound on coremltools' time.
 *
 *   node bench/palettize-linear.mjs [--layers 24] [--size 2048] [--nbits 4] [--group-size 16]
 *       [--threads 1,2] [--repeat 2] [--baseline-layers 1 | --no-baseline] [--ct-layers 1 | --no-ct]
 *       [--out DIR] [--keep]
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_WORK_DIR, fmtSec, machineLine, now, parseArgs, printTable, seedOf } from './lib/common.mjs';
import { generateUnet } from './generate-unet.mjs';
import { baselinePalettize } from './baseline-kmeans.mjs';
import { buildCtKmeans, CT_LABEL, makeTempDir, runCtKmeans } from './lib/ct-kmeans.mjs';

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

const CT_THREADS = 2; // coremltools' num_kmeans_workers in issue 14's side-by-side run

/** Identifier of a tensor's const in generate-unet's program (its ident()). */
const constName = (tensorName) => tensorName.replace(/[^A-Za-z0-9_]/g, '_');

/**
 * coremltools' k-means, C++ re-implementation: the first `ctLayers` weights read back from the
 * built model (openProgram + BlobFile, one layer in the JS heap at a time) into a temp file,
 * clustered at CT_THREADS threads, the wall time extrapolated to all layers. Returns
 * { model: seconds for all layers, ... } or undefined when g++ is missing.
 */
async function ctBaseline({ dist, dest, model, tensors, layers, size, nbits, groupSize, ctLayers }) {
  const [{ openProgram }, { BlobFile }] = await Promise.all([dist('mil/from-model.js'), dist('format/blob.js')]);
  const n = Math.max(1, Math.min(layers, ctLayers));
  if (groupSize * size < 10000) {
    log(`${CT_LABEL}: skipped (groups of ${groupSize * size} elements: coremltools uses scikit-learn's KMeans below 10,000, not re-implemented)`);
    return undefined;
  }
  const tmp = makeTempDir('palettize-linear-ct-');
  try {
    const { binary, reason } = buildCtKmeans(tmp.dir);
    if (!binary) {
      log(`${CT_LABEL}: skipped (${reason})`);
      return undefined;
    }
    const offsets = new Map();
    const opened = openProgram(model);
    try {
      for (const fn of opened.program.functions.values()) {
        for (const op of fn.walk()) if (op.isConst && op.constValue().blob) offsets.set(op.name, op.constValue().blob.offset);
      }
    } finally {
      opened.close();
    }
    const file = path.join(tmp.dir, 'weights.f16');
    const fd = fs.openSync(file, 'w');
    const blob = BlobFile.open(model.weightFilePath('@model_path/weights/weight.bin'));
    try {
      for (const t of tensors.slice(0, n)) {
        const offset = offsets.get(constName(t.name));
        if (offset === undefined) throw new Error(`${dest}: no const for ${t.name}`);
        const rec = blob.record(offset);
        if (rec.dtype !== 'float16' || rec.elementCount !== size * size) throw new Error(`${dest}: ${t.name} is ${rec.elementCount} × ${rec.dtype}, expected ${size * size} × float16`);
        fs.writeSync(fd, blob.readRaw(offset)); // one layer's copy at a time
      }
    } finally {
      blob.close();
      fs.closeSync(fd);
    }
    const r = runCtKmeans(binary, file, { rows: size, cols: size, nbits, groupSize, threads: CT_THREADS });
    const modelSeconds = (r.wall_s * layers) / n;
    log(`${CT_LABEL} on ${n} layer(s), ${CT_THREADS} threads: ${fmtSec(r.wall_s)} wall / ${fmtSec(r.cpu_s)} CPU ` +
      `(np.unique ${fmtSec(r.unique_cpu_s)}, kmeans1d ${fmtSec(r.kmeans1d_cpu_s)}), ${r.groups} groups of ~${r.distinct_mean.toFixed(0)} distinct values, ` +
      `×${layers / n} = ${fmtSec(modelSeconds)} for the model; a lower bound on coremltools 9.0 (Python, numpy, ctypes and multiprocessing overheads left out); LUT + indices FNV-1a ${r.hash}`);
    return { model: modelSeconds, ...r };
  } finally {
    tmp.cleanup();
  }
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
  const ct = args['no-ct'] ? undefined : await ctBaseline({ dist, dest, model, tensors, layers, size, nbits, groupSize, ctLayers: Number(args['ct-layers'] ?? 1) });
  printTable(['threads', `palettize ${nbits}-bit gs${groupSize} (best of ${repeat})`, 'per weight', ...(baseline ? ['vs JS Lloyd'] : [])], rows);
  log(`compressed weight.bin SHA-256: ${hash}`);
  if (ct) {
    // Our 2-thread time against the 2-worker re-implementation (the side-by-side setting).
    const t = best[2] !== undefined ? 2 : Math.max(...Object.keys(best).map(Number));
    log(`ours at ${t} thread(s) vs ${CT_LABEL} at ${CT_THREADS} threads: ${fmtSec(best[t])} vs ${fmtSec(ct.model)} = ${(ct.model / best[t]).toFixed(1)}× (a lower bound on the ratio to coremltools 9.0 itself)`);
  }
  if (!args.keep) fs.rmSync(dest, { recursive: true, force: true });
}

main().catch((e) => { console.error(e); process.exit(1); });
