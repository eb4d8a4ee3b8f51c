/**
 * The values that cross a sub-program boundary, per calibration sample: held in memory up to a
 * budget, then spilled to .npy files in a temporary folder (removed by close()). Function inputs are
 * not cached: they are read from the calibration folder when a sub-program needs them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readNpy, writeNpy, type NpyDType } from '../../runtime/npy.js';
import { createTempDir, removeTempDir } from '../../util/temp-dirs.js';
import type { NativeTensor } from '../../kernels/calibrate.js';

type Entry = { tensor: NativeTensor; bytes: number } | { file: string; bytes: number };

const NPY_OF: Record<NativeTensor['dtype'], NpyDType> = { fp32: 'fp32', fp16: 'fp16', int32: 'int32', bool: 'bool' };
const NATIVE_OF: Partial<Record<NpyDType, NativeTensor['dtype']>> = { fp32: 'fp32', fp16: 'fp16', int32: 'int32', bool: 'bool' };

export class BoundaryCache {
  private readonly values: Map<string, Entry>[];
  private inMemory = 0;
  private dir: string | null = null;
  private spills = 0;
  /** Most bytes held in memory at once, and bytes written to disk. */
  peakBytes = 0;
  spilledBytes = 0;

  constructor(samples: number, private readonly budget: number, private readonly loadInput: (sample: number, name: string) => NativeTensor | undefined) {
    this.values = Array.from({ length: samples }, () => new Map());
  }

  put(sample: number, name: string, tensor: NativeTensor): void {
    this.drop(sample, name);
    const bytes = tensor.data.byteLength;
    if (this.inMemory + bytes > this.budget) {
      this.dir ??= createTempDir();  // pid-named: swept after a SIGKILL
      const file = path.join(this.dir, `${this.spills++}.npy`);
      writeNpy(file, { dtype: NPY_OF[tensor.dtype], shape: tensor.shape, data: tensor.data });
      this.spilledBytes += bytes;
      this.values[sample]!.set(name, { file, bytes });
      return;
    }
    this.inMemory += bytes;
    this.peakBytes = Math.max(this.peakBytes, this.inMemory);
    this.values[sample]!.set(name, { tensor, bytes });
  }

  get(sample: number, name: string): NativeTensor {
    const e = this.values[sample]!.get(name);
    if (!e) {
      const input = this.loadInput(sample, name);
      if (!input) throw new Error(`calibration cache: value '${name}' of sample ${sample} is missing`);
      return input;
    }
    if ('tensor' in e) return e.tensor;
    const a = readNpy(e.file);
    return { dtype: NATIVE_OF[a.dtype]!, shape: a.shape, data: a.data as NativeTensor['data'] };
  }

  /** Forgets every cached value not in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    for (let s = 0; s < this.values.length; s++) for (const name of [...this.values[s]!.keys()]) if (!keep.has(name)) this.drop(s, name);
  }

  private drop(sample: number, name: string): void {
    const e = this.values[sample]!.get(name);
    if (!e) return;
    if ('tensor' in e) this.inMemory -= e.bytes;
    else fs.rmSync(e.file, { force: true });
    this.values[sample]!.delete(name);
  }

  close(): void {
    for (const m of this.values) m.clear();
    this.inMemory = 0;
    if (this.dir) removeTempDir(this.dir);
    this.dir = null;
  }
}
