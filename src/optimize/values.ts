/**
 * Values of the ops a pass writes: a blob reference into the new weight.bin, or an immediate built
 * from raw bytes the native job returned (coremltools' blob rule: fewer than 10 elements).
 */
import type { ValueMsg } from '../mil/values.js';
import { encodeImmediateTensor } from '../mil/values.js';
import { dtypeFromBlob, tensorType, type MilDType } from '../mil/types.js';
import type { CompressOutput } from './native-compress.js';

/** The one weight file coremltools writes. */
export const WEIGHT_FILE_NAME = '@model_path/weights/weight.bin';

export function blobValue(dtype: MilDType, shape: readonly number[], offset: number): ValueMsg {
  return { type: tensorType(dtype, shape), blobFileValue: { fileName: WEIGHT_FILE_NAME, offset } };
}

/** MIL dtypes whose immediates are stored verbatim in TensorValue.bytes (spec §2.5.1). */
const RAW_BYTES_DTYPES = new Set<MilDType>(['fp16', 'int8', 'uint8', 'uint32', 'int4', 'uint1', 'uint2', 'uint3', 'uint4', 'uint6']);

export function immediateFromBytes(dtype: MilDType, shape: readonly number[], bytes: Uint8Array): ValueMsg {
  if (RAW_BYTES_DTYPES.has(dtype)) {
    return { type: tensorType(dtype, shape), immediateValue: { tensor: { bytes: { values: new Uint8Array(bytes) } } } };
  }
  if (dtype === 'fp32') {
    const f = new Float32Array(bytes.byteLength / 4);
    new Uint8Array(f.buffer).set(bytes);
    return encodeImmediateTensor('fp32', f, shape);
  }
  throw new RangeError(`no raw-bytes immediate encoding for ${dtype}`);
}

/** The Value for one output of the native job, typed `dtype` with `shape`. */
export function outputValue(out: CompressOutput, shape: readonly number[], dtype?: MilDType): ValueMsg {
  const d = dtype ?? dtypeFromBlob(out.dtype);
  if (!d) throw new RangeError(`unknown blob dtype ${out.dtype}`);
  if (out.offset !== undefined) return blobValue(d, shape, out.offset);
  return immediateFromBytes(d, shape, out.bytes!);
}

export function int32Scalar(v: number): ValueMsg {
  return encodeImmediateTensor('int32', [v], []);
}

export function uint32Vector(values: readonly number[]): ValueMsg {
  return encodeImmediateTensor('uint32', values, [values.length]);
}
