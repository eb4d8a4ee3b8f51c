import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../src/errors.js';
import { formatNpy, parseNpy, type NpyArray } from '../../src/runtime/npy.js';

// Bytes numpy 1.x writes for np.save(f, np.array([[1, 2, 3], [4, 5, 6]], dtype='<f4')).
function numpyHeader(descr: string, shape: string, fortran = 'False'): Uint8Array {
  let h = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
  h += ' '.repeat((64 - ((10 + h.length + 1) % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + h.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length & 0xff, h.length >> 8]);
  for (let i = 0; i < h.length; i++) out[10 + i] = h.charCodeAt(i);
  return out;
}
function concat(a: Uint8Array, b: ArrayBufferView): Uint8Array {
  const out = new Uint8Array(a.length + b.byteLength);
  out.set(a);
  out.set(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), a.length);
  return out;
}

describe('npy', () => {
  it('reads a float32 C-order file as numpy writes it', () => {
    const bytes = concat(numpyHeader('<f4', '(2, 3)'), Float32Array.from([1, 2, 3, 4, 5, 6]));
    expect(bytes.length % 64).toBe(24); // 64-byte header + 24 data bytes
    const a = parseNpy(bytes);
    expect(a.dtype).toBe('fp32'); // the executor's vocabulary (predict takes it as is)
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(a.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reads scalars, 1-D shapes and every supported dtype', () => {
    expect(parseNpy(concat(numpyHeader('<i4', '()'), Int32Array.from([-7]))).shape).toEqual([]);
    expect(parseNpy(concat(numpyHeader('<f2', '(2,)'), Uint16Array.from([0x3c00, 0xc000]))).data).toEqual(Uint16Array.from([0x3c00, 0xc000]));
    expect(parseNpy(concat(numpyHeader('<i8', '(1,)'), BigInt64Array.from([-5n]))).data).toEqual(BigInt64Array.from([-5n]));
    expect(parseNpy(concat(numpyHeader('|b1', '(3,)'), Uint8Array.from([1, 0, 1]))).dtype).toBe('bool');
    expect(parseNpy(concat(numpyHeader('|u1', '(3,)'), Uint8Array.from([1, 0, 255]))).dtype).toBe('uint8');
  });

  it('round-trips through formatNpy byte for byte', () => {
    const arrays: NpyArray[] = [
      { dtype: 'fp32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
      { dtype: 'int32', shape: [4], data: Int32Array.from([1, -2, 3, -4]) },
      { dtype: 'fp16', shape: [1, 1, 2], data: Uint16Array.from([0x3c00, 0x7c00]) },
      { dtype: 'fp64', shape: [2], data: Float64Array.from([0.1, -1e300]) },
      { dtype: 'int8', shape: [3], data: Int8Array.from([-128, 0, 127]) },
      { dtype: 'int16', shape: [2], data: Int16Array.from([-32768, 32767]) },
      { dtype: 'int64', shape: [1], data: BigInt64Array.from([-(2n ** 40n)]) },
      { dtype: 'bool', shape: [], data: Uint8Array.from([1]) },
    ];
    for (const a of arrays) {
      const bytes = formatNpy(a);
      expect((bytes.length - a.data.byteLength) % 64).toBe(0);
      const back = parseNpy(bytes);
      expect(back).toEqual(a);
      expect(formatNpy(back)).toEqual(bytes);
    }
    // Same header text numpy writes for shape (4,).
    expect(new TextDecoder().decode(formatNpy(arrays[1]!).subarray(10, 74))).toContain("'shape': (4,)");
  });

  it('rejects Fortran order unless asked to convert, and converts it to C order', () => {
    // Column-major [[1,2,3],[4,5,6]] is stored 1,4,2,5,3,6.
    const bytes = concat(numpyHeader('<f4', '(2, 3)', 'True'), Float32Array.from([1, 4, 2, 5, 3, 6]));
    expect(() => parseNpy(bytes, 'a.npy')).toThrow(ModelFormatError);
    expect(() => parseNpy(bytes, 'a.npy')).toThrow(/a\.npy: .*Fortran-order/);
    expect(Array.from(parseNpy(bytes, 'a.npy', { convertFortranOrder: true }).data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('rejects bad magic, big-endian dtypes and truncated data with the file name', () => {
    expect(() => parseNpy(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), 'x.npy')).toThrow(/x\.npy: .*magic/);
    expect(() => parseNpy(concat(numpyHeader('>f4', '(1,)'), new Uint8Array(4)))).toThrow(/dtype '>f4'/);
    expect(() => parseNpy(concat(numpyHeader('<f4', '(3,)'), new Uint8Array(8)))).toThrow(/needs 12/);
  });

  it('reads numpy defaults (float64, int64) and small ints, in the executor vocabulary', () => {
    const f8 = parseNpy(concat(numpyHeader('<f8', '(3,)'), Float64Array.from([0.5, -2, 1e-310])));
    expect(f8.dtype).toBe('fp64');
    expect(Array.from(f8.data as Float64Array)).toEqual([0.5, -2, 1e-310]);
    expect(parseNpy(concat(numpyHeader('|i1', '(2,)'), Int8Array.from([-3, 4]))).data).toEqual(Int8Array.from([-3, 4]));
    expect(parseNpy(concat(numpyHeader('<i2', '(2,)'), Int16Array.from([-300, 400]))).data).toEqual(Int16Array.from([-300, 400]));
  });

  it('writes arrays that use numpy spellings (float32 / float16 / float64) as before', () => {
    const legacy = formatNpy({ dtype: 'float32', shape: [2], data: Float32Array.from([1, 2]) });
    expect(legacy).toEqual(formatNpy({ dtype: 'fp32', shape: [2], data: Float32Array.from([1, 2]) }));
    expect(new TextDecoder().decode(legacy.subarray(10, 40))).toContain("'descr': '<f4'");
    expect(parseNpy(formatNpy({ dtype: 'float64', shape: [1], data: Float64Array.from([3]) })).dtype).toBe('fp64');
    expect(() => formatNpy({ dtype: 'complex64' as 'fp32', shape: [1], data: Float32Array.from([1]) })).toThrow(/unknown dtype 'complex64'/);
  });
});
