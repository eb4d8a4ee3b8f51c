#!/usr/bin/env node
/**
 * Full-size synthetic UNet generator + I/O benchmark.
 *
 * Reads a layer-shape list ({tensors:[{name, shape, dtype, numel}]}, e.g. ../shared/models/
 * sdxl_unet_weights.json) and writes an ML Program with the same weights: every 4-D tensor is the
 * weight of a `conv`, every 2-D tensor the weight of a `linear`, 1-D tensors are the bias of their
 * module's conv/linear, or gamma/beta of a `layer_norm` (norm modules), or an `add` operand. The
 * topology is not the real UNet: one branch per module from the single input `x` (tiled to the
 * shape the op needs), each reduced to [1] and summed into the output `y`, so the program
 * type-checks and could run, and compression sees each weight behind the same op kind as in the
 * real model. Weights come from the native syntheticFp16 (seed from the tensor name, fan_in from the
 * shape) and are streamed to weight.bin one tensor at a time.
 *
 * Then, each in a fresh child process so peaks are separate:
 *   load:  loadModel + openProgram + every weight's metadata (shape, dtype, blob record), no data;
 *   read:  every weight record once through BlobFile (mmap) with a checksum.
 * Baselines measured in the same run: plain fs.writeSync of the same byte count (+fsync), the
 * generator's synthetic-data cost alone, and a plain fs.readSync pass over weight.bin.
 *
 *   node bench/generate-unet.mjs [--model sdxl|sd15|file.json] [--scale F] [--out DIR] [--spec 9] [--keep] [--json] [--generate-only]
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_WORK_DIR, MODELS_DIR, machineLine, RssSampler, fmtGB, fmtMiB, fmtSec, memoryStatus, now, parseArgs, printTable, runChild, seedOf,
} from './lib/common.mjs';

const dist = (p) => import(new URL(`../dist/${p}`, import.meta.url).href);
const SELF = fileURLToPath(import.meta.url);

/* ---------------- shape list ---------------- */

/** { label, tensors } of `sdxl`, `sd15` or a JSON file path. */
export function loadShapeList(model = 'sdxl') {
  const file = model === 'sdxl' || model === 'sd15' ? path.join(MODELS_DIR, `${model}_unet_weights.json`) : path.resolve(model);
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!Array.isArray(json.tensors)) throw new Error(`${file}: expected {tensors: [...]}`);
  for (const t of json.tensors) {
    if (t.dtype && t.dtype !== 'float16') throw new Error(`${file}: tensor ${t.name} is ${t.dtype}; the generator writes float16`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.numel !== undefined && t.numel !== n) throw new Error(`${file}: tensor ${t.name}: numel ${t.numel} != product of shape ${n}`);
  }
  return { arg: model, label: model === 'sdxl' || model === 'sd15' ? model : path.basename(file, '.json'), file, tensors: json.tensors };
}

/** The first ceil(scale·count) tensors (scale 1: all). */
export function firstFraction(tensors, scale = 1) {
  if (!(scale > 0 && scale <= 1)) throw new Error(`--scale must be in (0, 1], got ${scale}`);
  return scale === 1 ? tensors : tensors.slice(0, Math.max(1, Math.ceil(tensors.length * scale)));
}

const numel = (shape) => shape.reduce((a, b) => a * b, 1);

/** MIL identifier from a PyTorch parameter path. */
function ident(name) {
  const s = name.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[A-Za-z_]/.test(s) ? s : `t_${s}`;
}

/** Groups tensors by module (name without its last component), keeping first-appearance order. */
function modulesOf(tensors) {
  const modules = new Map();
  for (const t of tensors) {
    const dot = t.name.lastIndexOf('.');
    const mod = dot > 0 ? t.name.slice(0, dot) : t.name;
    const leaf = dot > 0 ? t.name.slice(dot + 1) : '';
    if (!modules.has(mod)) modules.set(mod, { name: mod, weight: undefined, bias: undefined, other: [] });
    const m = modules.get(mod);
    if (leaf === 'weight' && !m.weight) m.weight = t;
    else if (leaf === 'bias' && !m.bias) m.bias = t;
    else m.other.push(t);
  }
  return [...modules.values()];
}

/* ---------------- generator ---------------- */

/**
 * Writes the synthetic model to `dest` (.mlpackage). Never holds more than one tensor's data.
 * Returns { tensors, weights, bytes (weight.bin), seconds, synthSeconds, ops }.
 */
export async function generateUnet({ tensors, dest, specVersion = 9, onProgress }) {
  const [{ ProgramBuilder, tensor }, { syntheticFp16 }] = await Promise.all([dist('mil/builder.js'), dist('util/synthetic.js')]);
  const started = now();
  fs.rmSync(dest, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  // Same directory as dest, so save() moves it into the package with a rename.
  const weightsPath = `${dest}.weight.bin.tmp`;
  const b = new ProgramBuilder({
    specVersion, weightsPath, // the builder's default sink is the native BlobWriter
    shortDescription: 'coreml-optimize bench: synthetic UNet (real layer shapes, synthetic weights)',
  });
  let synthSeconds = 0;
  let weights = 0;
  let written = 0;
  /** A const holding synthetic fp16 data; the Uint16Array is dropped as soon as it is appended. */
  const constOf = (t, kind) => {
    const count = numel(t.shape);
    const fanIn = t.shape.length >= 2 ? numel(t.shape.slice(1)) : 1;
    const s = now();
    const data = syntheticFp16({ count, kind, fanIn, seed: seedOf(t.name) });
    synthSeconds += now() - s;
    weights += count;
    const v = b.const(ident(t.name), data, t.shape, 'fp16');
    onProgress?.(++written, tensors.length);
    return v;
  };

  const x = b.input('x', 'fp16', [1, 1]);
  const tiles = new Map();
  const ranked = new Map([[2, x]]);
  /** `x` tiled to [1, ...dims] (cached per shape; the reshape to that rank cached per rank). */
  const tiled = (dims) => {
    const shape = [1, ...dims];
    const key = shape.join('x');
    let v = tiles.get(key);
    if (!v) {
      let base = ranked.get(shape.length);
      if (!base) ranked.set(shape.length, (base = b.op('reshape', { x, shape: shape.map(() => 1) }, { name: `x_rank${shape.length}` })));
      v = b.op('tile', { x: base, reps: shape }, { name: `x_tile_${key}`, outputs: [{ dtype: 'fp16', shape }] });
      tiles.set(key, v);
    }
    return v;
  };
  let acc;
  const branch = (out, name) => {
    const axes = out.shape.map((_, i) => i).slice(1);
    const r = b.op('reduce_mean', { x: out, axes, keep_dims: false }, { name: `${name}_mean` });
    acc = acc ? b.op('add', { x: acc, y: r }, { name: `${name}_acc` }) : r;
  };
  const eps = tensor('fp16', [1e-5], []);
  const ops = { conv: 0, linear: 0, layer_norm: 0, add: 0, mul: 0 };

  for (const m of modulesOf(tensors)) {
    const id = ident(m.name);
    const w = m.weight;
    const biasFits = (n) => m.bias && m.bias.shape.length === 1 && m.bias.shape[0] === n;
    let used = false;
    if (w && w.shape.length === 4) {
      const [cout, cin, kh, kw] = w.shape;
      const weight = constOf(w, 'weight');
      const bias = biasFits(cout) ? constOf(m.bias, 'bias') : undefined;
      const y = b.op('conv', { x: tiled([cin, kh, kw]), weight, bias, pad_type: 'valid', strides: [1, 1], dilations: [1, 1], groups: 1 }, { name: id });
      branch(y, id);
      ops.conv++;
      used = bias !== undefined;
    } else if (w && w.shape.length === 2) {
      const [cout, cin] = w.shape;
      const weight = constOf(w, 'weight');
      const bias = biasFits(cout) ? constOf(m.bias, 'bias') : undefined;
      branch(b.op('linear', { x: tiled([cin]), weight, bias }, { name: id }), id);
      ops.linear++;
      used = bias !== undefined;
    } else if (w && w.shape.length === 1) {
      // Norm parameters (GroupNorm/LayerNorm weight and bias): gamma/beta of a layer_norm.
      const c = w.shape[0];
      const gamma = constOf(w, 'norm');
      const beta = biasFits(c) ? constOf(m.bias, 'bias') : undefined;
      branch(b.op('layer_norm', { x: tiled([c]), axes: [-1], gamma, beta, epsilon: eps }, { name: id }), id);
      ops.layer_norm++;
      used = beta !== undefined;
    } else if (w) {
      // Any other rank: an elementwise mul against the input tiled to the weight's shape.
      branch(b.op('mul', { x: tiled(w.shape), y: constOf(w, 'weight') }, { name: id }), id);
      ops.mul++;
    }
    const rest = [...(m.bias && !used ? [m.bias] : []), ...m.other];
    for (const t of rest) {
      const tid = ident(t.name);
      branch(b.op('add', { x: tiled(t.shape), y: constOf(t, t.shape.length === 1 ? 'bias' : 'weight') }, { name: `${tid}_add` }), tid);
      ops.add++;
    }
  }
  if (!acc) throw new Error('no tensors to write');
  b.output(acc, 'y');
  const model = await b.save(dest);
  const bytes = fs.statSync(model.weightFilePath('@model_path/weights/weight.bin')).size;
  return { tensors: written, weights, bytes, seconds: now() - started, synthSeconds, ops };
}

/* ---------------- baselines ---------------- */

/** Plain fs.writeSync of `bytes` bytes (8 MiB reused buffer) + fsync: the floor for the generator. */
function plainWrite(file, bytes) {
  const chunk = Buffer.alloc(8 << 20, 0x5a);
  const s = now();
  const fd = fs.openSync(file, 'w');
  for (let done = 0; done < bytes;) {
    const n = Math.min(chunk.length, bytes - done);
    fs.writeSync(fd, chunk, 0, n);
    done += n;
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const seconds = now() - s;
  fs.rmSync(file, { force: true });
  return seconds;
}

/** 32-bit word sum + xor of a byte range (the "read everything once" checksum). */
function checksumInto(state, bytes) {
  const words = Math.floor(bytes.byteLength / 4);
  const u32 = new Uint32Array(bytes.buffer, bytes.byteOffset, words);
  let sum = state.sum, x = state.xor;
  for (let i = 0; i < words; i++) { const w = u32[i]; sum = (sum + w) >>> 0; x ^= w; }
  for (let i = words * 4; i < bytes.byteLength; i++) sum = (sum + bytes[i]) >>> 0;
  state.sum = sum; state.xor = x >>> 0;
}

/* ---------------- child phases ---------------- */

async function phaseLoad(modelPath) {
  const [{ loadModel }, { openProgram }, { BlobFile }] = await Promise.all([dist('model.js'), dist('mil/from-model.js'), dist('format/blob.js')]);
  const before = memoryStatus();
  const s = now();
  const model = await loadModel(modelPath);
  const loaded = now() - s;
  const opened = openProgram(model);
  const file = BlobFile.open(model.weightFilePath('@model_path/weights/weight.bin'));
  let count = 0, elements = 0, recordBytes = 0;
  for (const fn of opened.program.functions.values()) {
    for (const op of fn.walk()) {
      if (!op.isConst) continue;
      const blob = op.constValue().blob;
      if (!blob) continue;
      const rec = file.record(blob.offset); // the 64-byte metadata only
      count++;
      elements += rec.elementCount;
      recordBytes += rec.sizeInBytes;
    }
  }
  file.close();
  opened.close();
  const seconds = now() - s;
  const after = memoryStatus();
  return { phase: 'load', seconds, loadSeconds: loaded, weights: count, elements, recordBytes, hwm: after.hwm, rssBefore: before.rss, rssAfter: after.rss, anonAfter: after.anon };
}

async function phaseRead(modelPath) {
  const [{ loadModel }, { BlobFile }] = await Promise.all([dist('model.js'), dist('format/blob.js')]);
  const model = await loadModel(modelPath);
  const weightBin = model.weightFilePath('@model_path/weights/weight.bin');
  const sampler = new RssSampler();
  const s = now();
  const file = BlobFile.open(weightBin);
  const state = { sum: 0, xor: 0 };
  let bytes = 0;
  for (const rec of file.records()) {
    const raw = file.readRaw(rec.metadataOffset); // a copy out of the mapping, one record at a time
    checksumInto(state, raw);
    bytes += raw.byteLength;
    sampler.sample();
  }
  file.close();
  const seconds = now() - s;
  const mem = sampler.stop();
  // Baseline: the same bytes through plain positioned reads (8 MiB buffer), same checksum.
  const s2 = now();
  const fd = fs.openSync(weightBin, 'r');
  const buf = Buffer.alloc(8 << 20);
  const plain = { sum: 0, xor: 0 };
  let pos = 0;
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) break;
    checksumInto(plain, n === buf.length ? buf : buf.subarray(0, n & ~3));
    pos += n;
  }
  fs.closeSync(fd);
  const plainSeconds = now() - s2;
  return { phase: 'read', seconds, bytes, checksum: `${state.sum.toString(16)}/${state.xor.toString(16)}`, plainSeconds, plainBytes: pos, ...mem };
}

/* ---------------- CLI ---------------- */

export function defaultModelPath(label, scale, spec, dir = DEFAULT_WORK_DIR) {
  return path.join(dir, `${label}-unet-synthetic-s${scale}-spec${spec}.mlpackage`);
}

async function main() {
  const args = parseArgs();
  if (args.help) {
    console.log('node bench/generate-unet.mjs [--model sdxl|sd15|file.json] [--scale F] [--out DIR] [--spec 9] [--keep] [--json] [--generate-only]');
    return;
  }
  if (args.phase) {
    const r = args.phase === 'load' ? await phaseLoad(args['model-path']) : await phaseRead(args['model-path']);
    console.log(JSON.stringify(r));
    return;
  }
  const list = loadShapeList(args.model ?? 'sdxl');
  const scale = Number(args.scale ?? 1);
  const spec = Number(args.spec ?? 9);
  const outDir = path.resolve(args.out ?? DEFAULT_WORK_DIR);
  const tensors = firstFraction(list.tensors, scale);
  const dest = defaultModelPath(list.label, scale, spec, outDir);
  const log = (s) => console.log(s);
  log(`# generate-unet: ${list.label} (${path.basename(list.file)}), ${tensors.length}/${list.tensors.length} tensors (scale ${scale}), spec ${spec}`);
  log(`# output ${dest}`);
  log(`# machine: ${machineLine()}`);

  const sampler = new RssSampler().every(200);
  let lastPct = -1;
  const gen = await generateUnet({
    tensors, dest, specVersion: spec,
    onProgress: (done, total) => {
      sampler.sample();
      const pct = Math.floor((done / total) * 10);
      if (pct !== lastPct) { lastPct = pct; process.stderr.write(`  written ${done}/${total} tensors\n`); }
    },
  });
  const genMem = sampler.stop();
  if (args['generate-only']) {
    console.log(JSON.stringify({ dest, ...gen, ...genMem }));
    return;
  }
  const plainSeconds = plainWrite(path.join(outDir, 'plain-write-baseline.tmp'), gen.bytes);
  const load = await runChild(SELF, ['--phase', 'load', '--model-path', dest]);
  const read = await runChild(SELF, ['--phase', 'read', '--model-path', dest]);

  const result = { model: list.label, scale, spec, dest, generate: { ...gen, ...genMem, plainWriteSeconds: plainSeconds }, load, read };
  if (args.json) console.log(JSON.stringify(result));
  log('');
  log(`tensors ${gen.tensors}, weights ${gen.weights.toLocaleString('en-US')}, weight.bin ${fmtGB(gen.bytes)} (${gen.bytes} B); ops: ${Object.entries(gen.ops).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  const gbps = (bytes, s) => `${(bytes / s / 1e6).toFixed(0)} MB/s`;
  printTable(['phase', 'time', 'throughput', 'peak RSS (VmHWM)', 'note'], [
    ['generate + write (ours)', fmtSec(gen.seconds), gbps(gen.bytes, gen.seconds), fmtMiB(genMem.peakHwm), `synthetic data ${fmtSec(gen.synthSeconds)} of it; max anon RSS ${fmtMiB(genMem.maxAnon)}`],
    ['  of which writing (excl. synthetic data)', fmtSec(gen.seconds - gen.synthSeconds), gbps(gen.bytes, gen.seconds - gen.synthSeconds), '', 'builder + native BlobWriter + fsync'],
    ['baseline: fs.writeSync same bytes', fmtSec(plainSeconds), gbps(gen.bytes, plainSeconds), '', '8 MiB buffer + fsync'],
    ['load + openProgram + metadata', fmtSec(load.seconds), '', fmtMiB(load.hwm), `${load.weights} weights, ${load.elements.toLocaleString('en-US')} elements listed; loadModel ${fmtSec(load.loadSeconds)}`],
    ['read all weights (BlobFile mmap)', fmtSec(read.seconds), gbps(read.bytes, read.seconds), fmtMiB(read.peakHwm), `max anon ${fmtMiB(read.maxAnon)}, max file-backed ${fmtMiB(read.maxFile)}; checksum ${read.checksum}`],
    ['baseline: fs.readSync same file', fmtSec(read.plainSeconds), gbps(read.plainBytes, read.plainSeconds), '', 'after the mmap pass (page cache warm for both)'],
  ]);
  log(`generator overhead vs plain write: ${(gen.seconds / plainSeconds).toFixed(2)}x the time`);
  if (!args.keep) {
    fs.rmSync(dest, { recursive: true, force: true });
    log(`# removed ${dest} (pass --keep to keep it)`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  main().catch((e) => { console.error(e); process.exit(1); });
}
