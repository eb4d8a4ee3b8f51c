/**
 * NumPy `.npy` files (format versions 1–3), C order only. Used for executor inputs/outputs and the
 * reference fixtures. Supported dtypes: float32, float16 (as raw Uint16Array halves), float64 (numpy's
 * default), int32, int64 (BigInt64Array), bool and uint8 (Uint8Array).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ModelFormatError } from '../errors.js';

export type NpyDType = 'float32' | 'float16' | 'float64' | 'int32' | 'int64' | 'bool' | 'uint8';
export type NpyData = Float32Array | Uint16Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

export interface NpyArray {
  dtype: NpyDType;
  shape: number[];
  data: NpyData;
}

const DESCR: Record<string, { dtype: NpyDType; size: number }> = {
  '<f4': { dtype: 'float32', size: 4 },
  '<f2': { dtype: 'float16', size: 2 },
  '<f8': { dtype: 'float64', size: 8 },
  '<i4': { dtype: 'int32', size: 4 },
  '<i8': { dtype: 'int64', size: 8 },
  '|b1': { dtype: 'bool', size: 1 },
  '|u1': { dtype: 'uint8', size: 1 },
  '<u1': { dtype: 'uint8', size: 1 },
};
const DESCR_OF: Record<NpyDType, string> = {
  float32: '<f4',
  float16: '<f2',
  float64: '<f8',
  int32: '<i4',
  int64: '<i8',
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
  if (!info) fail(`dtype '${descr}' is not supported (float32, float16, float64, int32, int64, bool, uint8, little-endian)`);
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
    case 'float32': data = new Float32Array(buf); break;
    case 'float16': data = new Uint16Array(buf); break;
    case 'float64': data = new Float64Array(buf); break;
    case 'int32': data = new Int32Array(buf); break;
    case 'int64': data = new BigInt64Array(buf); break;
    default: data = new Uint8Array(buf);
  }
  if (fortran === 'True') data = fortranToC(data, shape);
  return { dtype: info!.dtype, shape, data };
}

export function readNpy(path: string, options: NpyReadOptions = {}): NpyArray {
  return parseNpy(readFileSync(path), path, options);
}

/** Serializes an array as .npy version 1.0 (header padded to a multiple of 64 bytes, as numpy does). */
export function formatNpy(array: NpyArray): Uint8Array {
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (array.data.length !== count) {
    throw new RangeError(`npy: data has ${array.data.length} elements, shape [${array.shape.join(', ')}] needs ${count}`);
  }
  const shapeText = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '${DESCR_OF[array.dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + array.data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength), 10 + header.length);
  return out;
}

export function writeNpy(path: string, array: NpyArray): void {
  writeFileSync(path, formatNpy(array));
}
