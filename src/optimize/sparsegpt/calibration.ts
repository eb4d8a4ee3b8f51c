/**
 * Calibration data: a folder of sample folders, each holding one `.npy` per model input (the layout
 * `generate --record-unet-inputs` writes and `predict --inputs` reads). `nsamples` of them are
 * picked spread evenly over the sorted folder list. Every picked sample's headers are checked
 * against the model's inputs before any work; the data itself is read when a sample is used.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, ModelFormatError } from '../../errors.js';
import { readNpy, type NpyArray } from '../../runtime/npy.js';
import type { GraphNamedType } from '../../runtime/executor.js';
import type { NativeTensor } from '../../kernels/calibrate.js';

export interface CalibrationSample {
  /** The sample folder. */
  dir: string;
  /** Input name → .npy path. */
  files: Record<string, string>;
}

export interface CalibrationSet {
  dir: string;
  /** Sample folders found. */
  available: number;
  samples: CalibrationSample[];
}

const FLOAT_DTYPES = new Set(['fp16', 'fp32', 'fp64', 'bf16']);

/** numpy's header only (dtype, shape), without reading the data. */
function readHeader(file: string): { descr: string; shape: number[] } {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(12);
    fs.readSync(fd, head, 0, 12, 0);
    const major = head[6]!;
    const len = major === 1 ? head.readUInt16LE(8) : head.readUInt32LE(8);
    const start = major === 1 ? 10 : 12;
    const buf = Buffer.alloc(start + len);
    fs.readSync(fd, buf, 0, start + len, 0);
    const text = buf.subarray(start).toString('latin1');
    const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
    const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
    if (head.subarray(0, 6).toString('latin1') !== '\x93NUMPY' || descr === undefined || shapeText === undefined) {
      throw new ModelFormatError('not a .npy file (no \\x93NUMPY header with descr and shape)', { file });
    }
    const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
    return { descr, shape };
  } finally {
    fs.closeSync(fd);
  }
}

const FLOAT_DESCR = new Set(['<f2', '<f4', '<f8']);
const INT_DESCR = new Set(['<i4', '<i8', '|b1', '|u1', '<u1']);

/**
 * Picks `nsamples` sample folders of `dir` (spread evenly) and checks that each has a well-shaped
 * .npy for every input. Throws ConfigError naming the sample and the input.
 */
export function openCalibrationSet(dir: string, inputs: readonly GraphNamedType[], nsamples: number): CalibrationSet {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new ConfigError(`calibration: cannot read the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { file: dir, cause: e });
  }
  const folders = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (folders.length === 0) throw new ConfigError('calibration: the folder holds no sample folders (one folder of <input>.npy files per sample)', { file: dir });
  const count = Math.min(nsamples, folders.length);
  // Evenly spread: sample k of count takes folder floor(k·N/count) (all of them when count = N).
  const picked = Array.from({ length: count }, (_, k) => folders[Math.floor((k * folders.length) / count)]!);
  const samples = picked.map((name) => {
    const sdir = path.join(dir, name);
    const files: Record<string, string> = {};
    for (const input of inputs) {
      const file = path.join(sdir, `${input.name}.npy`);
      if (!fs.existsSync(file)) throw new ConfigError(`calibration sample '${name}': no ${input.name}.npy for model input '${input.name}'`, { file: sdir });
      const { descr, shape } = readHeader(file);
      const isFloat = FLOAT_DTYPES.has(input.type.dtype);
      if (isFloat ? !FLOAT_DESCR.has(descr) : !INT_DESCR.has(descr)) {
        throw new ConfigError(`calibration sample '${name}', input '${input.name}': dtype '${descr}' does not fit the model's ${input.type.dtype}`, { file });
      }
      const want = input.type.shape;
      if (want && (want.length !== shape.length || want.some((d, i) => d >= 0 && d !== shape[i]))) {
        throw new ConfigError(`calibration sample '${name}', input '${input.name}': shape (${shape.join(', ')}) differs from the model's [${want.join(', ')}]`, { file });
      }
      files[input.name] = file;
    }
    return { dir: sdir, files };
  });
  return { dir, available: folders.length, samples };
}

/** An .npy array as a native tensor of the model input's kind (float64 → fp32, int64 → int32). */
export function npyToTensor(a: NpyArray, floatInput: boolean, file: string): NativeTensor {
  if (floatInput) {
    if (a.dtype === 'fp32') return { dtype: 'fp32', shape: a.shape, data: a.data as Float32Array };
    if (a.dtype === 'fp16') return { dtype: 'fp16', shape: a.shape, data: a.data as Uint16Array };
    if (a.dtype === 'fp64') return { dtype: 'fp32', shape: a.shape, data: Float32Array.from(a.data as Float64Array) };
  } else {
    if (a.dtype === 'int32') return { dtype: 'int32', shape: a.shape, data: a.data as Int32Array };
    if (a.dtype === 'int64') return { dtype: 'int32', shape: a.shape, data: Int32Array.from(a.data as BigInt64Array, (v) => Number(v)) };
    if (a.dtype === 'bool' || a.dtype === 'uint8') return { dtype: 'bool', shape: a.shape, data: a.data as Uint8Array };
  }
  throw new ConfigError(`calibration: .npy dtype ${a.dtype} does not fit a ${floatInput ? 'float' : 'integer'} input`, { file });
}

/** The sample's inputs, read now. */
export function loadSample(sample: CalibrationSample, inputs: readonly GraphNamedType[]): Record<string, NativeTensor> {
  const out: Record<string, NativeTensor> = {};
  for (const input of inputs) {
    const file = sample.files[input.name]!;
    out[input.name] = npyToTensor(readNpy(file), FLOAT_DTYPES.has(input.type.dtype), file);
  }
  return out;
}
