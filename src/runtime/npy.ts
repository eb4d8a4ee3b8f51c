/**
 * NumPy `.npy` files (format versions 1–3), C order only. Used for executor inputs/outputs and the
 * reference fixtures. Arrays use the executor's dtype vocabulary (`fp32`, `fp16` as raw Uint16Array
 * halves, `fp64`, `int64` as BigInt64Array, `int32`, `int16`, `int8`, `uint8`, `bool`); writers also
 * accept numpy's spellings (`float32`, `float16`, `float64`), so arrays from older code still save.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ModelFormatError } from '../errors.js';
import { requireDType, type DType, type DTypeName, type TensorData } from './tensor-dtype.js';

/** Element types readNpy returns (the executor's vocabulary). */
export type NpyDType = DType;
export type NpyData = TensorData;

export interface NpyArray {
  dtype: NpyDType;
  shape: number[];
  data: NpyData;
}
/** What writeNpy / formatNpy accept: an NpyArray, or one whose dtype uses numpy's spelling. */
export interface NpyArrayLike {
  dtype: DTypeName;
  shape: number[];
  data: NpyData;
}

const DESCR: Record<string, { dtype: NpyDType; size: number }> = {
  '<f4': { dtype: 'fp32', size: 4 },
  '<f2': { dtype: 'fp16', size: 2 },
  '<f8': { dtype: 'fp64', size: 8 },
  '<i4': { dtype: 'int32', size: 4 },
  '<i8': { dtype: 'int64', size: 8 },
  '<i2': { dtype: 'int16', size: 2 },
  '|i1': { dtype: 'int8', size: 1 },
  '<i1': { dtype: 'int8', size: 1 },
  '|b1': { dtype: 'bool', size: 1 },
  '|u1': { dtype: 'uint8', size: 1 },
  '<u1': { dtype: 'uint8', size: 1 },
};
const DESCR_OF: Record<NpyDType, string> = {
  fp32: '<f4',
  fp16: '<f2',
  fp64: '<f8',
  int32: '<i4',
  int64: '<i8',
  int16: '<i2',
  int8: '|i1',
  bool: '|b1',
  uint8: '|u1',
};

export interface NpyReadOptions {
  /**
   * Fortran-order (column-major) files are rejected unless this is true; then the data is
   * reordered into C order (some reference fixtures were saved from transposed numpy views).
   */
  convertFortranOrder?: boolean;
}

/** Reorders column-major data of `shape` into row-major. */
function fortranToC<T extends NpyData>(src: T, shape: number[]): T {
  const out = new (src.constructor as new (n: number) => T)(src.length);
  const r = shape.length;
  const idx = new Array<number>(r).fill(0);
  const fStride: number[] = [];
  let acc = 1;
  for (let d = 0; d < r; d++) {
    fStride.push(acc);
    acc *= shape[d]!;
  }
  for (let k = 0; k < src.length; k++) {
    let off = 0;
    for (let d = 0; d < r; d++) off += idx[d]! * fStride[d]!;
    (out as unknown as number[])[k] = (src as unknown as number[])[off]!;
    for (let d = r - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Parses the bytes of a .npy file; `file` only names the source in error messages. */
export function parseNpy(bytes: Uint8Array, file = '<buffer>', options: NpyReadOptions = {}): NpyArray {
  const fail = (msg: string): never => {
    throw new ModelFormatError(`not a supported .npy file: ${msg}`, { file });
  };
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) fail('missing \\x93NUMPY magic');
  const major = bytes[6]!;
  if (major < 1 || major > 3) fail(`format version ${major} is not supported`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) fail('header runs past the end of the file');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) fail('header lacks descr/fortran_order/shape');
  if (fortran === 'True' && !options.convertFortranOrder) {
    fail('Fortran-order arrays are not supported; save with numpy.ascontiguousarray(a)');
  }
  const info = DESCR[descr!];
  if (!info) fail(`dtype '${descr}' is not supported (little-endian f2/f4/f8, i1/i2/i4/i8, u1, b1)`);
  const shape = shapeText!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const n = Number(s.replace(/L$/, ''));
      if (!Number.isInteger(n) || n < 0) fail(`bad dimension '${s}' in shape`);
      return n;
    });
  const count = shape.reduce((a, b) => a * b, 1);
  const nbytes = count * info!.size;
  if (dataStart + nbytes > bytes.length) fail(`data holds ${bytes.length - dataStart} bytes, shape (${shape.join(', ')}) needs ${nbytes}`);
  // Copy so the typed array is aligned and owns its memory.
  const buf = new Uint8Array(bytes.subarray(dataStart, dataStart + nbytes)).buffer;
  let data: NpyData;
  switch (info!.dtype) {
    case 'fp32': data = new Float32Array(buf); break;
    case 'fp16': data = new Uint16Array(buf); break;
    case 'fp64': data = new Float64Array(buf); break;
    case 'int32': data = new Int32Array(buf); break;
    case 'int64': data = new BigInt64Array(buf); break;
    case 'int16': data = new Int16Array(buf); break;
    case 'int8': data = new Int8Array(buf); break;
    default: data = new Uint8Array(buf);
  }
  if (fortran === 'True') data = fortranToC(data, shape);
  return { dtype: info!.dtype, shape, data };
}

export function readNpy(path: string, options: NpyReadOptions = {}): NpyArray {
  return parseNpy(readFileSync(path), path, options);
}

/** Serializes an array as .npy version 1.0 (header padded to a multiple of 64 bytes, as numpy does). */
export function formatNpy(array: NpyArrayLike): Uint8Array {
  const dtype = requireDType(array.dtype, 'npy');
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (array.data.length !== count) {
    throw new RangeError(`npy: data has ${array.data.length} elements, shape [${array.shape.join(', ')}] needs ${count}`);
  }
  const shapeText = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '${DESCR_OF[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + array.data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength), 10 + header.length);
  return out;
}

export function writeNpy(path: string, array: NpyArrayLike): void {
  writeFileSync(path, formatNpy(array));
}
