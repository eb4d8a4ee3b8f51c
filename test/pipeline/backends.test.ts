/**
 * Backend selection on this platform: the Core ML backend explains that it needs macOS, the executor
 * refuses compiled .mlmodelc with a pointer to what to do, and the Core ML compile cache key follows
 * the package's contents (path, sizes, mtimes).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, UnsupportedError } from '../../src/errors.js';
import { compiledCachePath, coremlAvailable, defaultBackendKind, loadBackend, toInputType } from '../../src/pipeline/backends/index.js';
import { readNpy } from '../../src/runtime/npy.js';
import { halfBitsToFloatArray } from '../../src/mil/values.js';

const MLP = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures/executor-reference/net_mlp_fp16');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-backends-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('pipeline backends', () => {
  it('default backend: Core ML on macOS, the executor elsewhere', () => {
    expect(defaultBackendKind('darwin')).toBe('coreml');
    expect(defaultBackendKind('linux')).toBe('executor');
    expect(defaultBackendKind('win32')).toBe('executor');
  });

  it.skipIf(process.platform === 'darwin')('Core ML is reported unavailable off macOS, with a typed error naming the file', async () => {
    expect(coremlAvailable()).toBe(false);
    const file = path.join(tmp, 'Unet.mlpackage');
    await expect(loadBackend(file, { backend: 'coreml' })).rejects.toThrow(UnsupportedError);
    await expect(loadBackend(file, { backend: 'coreml' })).rejects.toThrow(/Unet\.mlpackage: the Core ML backend is only available on macOS/);
  });

  it('the executor refuses compiled .mlmodelc; bad backend / compute unit names are ConfigErrors', async () => {
    await expect(loadBackend(path.join(tmp, 'Resources', 'Unet.mlmodelc'), { backend: 'executor' })).rejects.toThrow(/runs \.mlpackage \(or \.mlmodel\) files, not compiled \.mlmodelc/);
    await expect(loadBackend('x.mlpackage', { backend: 'tpu' as never })).rejects.toThrow(ConfigError);
    await expect(loadBackend('x.mlpackage', { backend: 'executor', computeUnit: 'GPU' as never })).rejects.toThrow(/compute unit 'GPU' is not one of ALL, CPU_ONLY, CPU_AND_GPU, CPU_AND_NE/);
  });

  it('compile cache key: stable for the same package, new after an edit, distinct per path', () => {
    const pkg = path.join(tmp, 'a', 'Unet.mlpackage');
    fs.mkdirSync(path.join(pkg, 'Data', 'com.apple.CoreML', 'weights'), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'Manifest.json'), '{}');
    const weight = path.join(pkg, 'Data', 'com.apple.CoreML', 'weights', 'weight.bin');
    fs.writeFileSync(weight, Buffer.alloc(128));
    fs.utimesSync(weight, new Date(1_700_000_000_000), new Date(1_700_000_000_000));
    const cache = path.join(tmp, 'cache');
    const first = compiledCachePath(pkg, cache);
    expect(path.dirname(first)).toBe(cache);
    expect(path.basename(first)).toMatch(/^Unet-[0-9a-f]{16}\.mlmodelc$/);
    expect(compiledCachePath(pkg, cache)).toBe(first);
    fs.utimesSync(weight, new Date(1_700_000_001_000), new Date(1_700_000_001_000));
    const touched = compiledCachePath(pkg, cache);
    expect(touched).not.toBe(first);
    fs.writeFileSync(weight, Buffer.alloc(129));
    fs.utimesSync(weight, new Date(1_700_000_001_000), new Date(1_700_000_001_000));
    expect(compiledCachePath(pkg, cache)).not.toBe(touched);
    const other = path.join(tmp, 'b', 'Unet.mlpackage');
    fs.cpSync(pkg, other, { recursive: true, preserveTimestamps: true });
    expect(compiledCachePath(other, cache)).not.toBe(compiledCachePath(pkg, cache));
  });

  it.skipIf(!fs.existsSync(MLP))('executor backend: fp16 outputs come back as float32 (net_mlp_fp16 vs its torch reference)', async () => {
    const backend = await loadBackend(path.join(MLP, 'model.mlpackage'), { backend: 'executor', threads: 1 });
    expect(backend.kind).toBe('executor');
    expect(backend.outputs.map((o) => o.dtype)).toEqual(['fp16', 'fp16']);
    const x = readNpy(path.join(MLP, 'inputs', 'x.npy'));
    const out = await backend.predict({ x: { data: x.data as Float32Array, shape: x.shape } });
    for (const name of ['probs', 'logits']) {
      expect(out[name]!.data).toBeInstanceOf(Float32Array);
      const want = readNpy(path.join(MLP, 'expected', `${name}.npy`));
      const wantF = want.dtype === 'fp16' ? halfBitsToFloatArray(want.data as Uint16Array) : (want.data as Float32Array);
      expect(out[name]!.shape).toEqual(want.shape);
      // The fixture's tolerance (case.json): |a - e| <= 0.007 + 0.01 |e|.
      wantF.forEach((e, i) => expect(Math.abs(out[name]!.data[i]! - e)).toBeLessThanOrEqual(0.007 + 0.01 * Math.abs(e)));
    }
  });

  it('token ids convert to the declared input type', () => {
    expect(toInputType({ data: Float32Array.from([49406, 320.0]), shape: [1, 2] }, 'int32').data).toEqual(Int32Array.from([49406, 320]));
    expect(toInputType({ data: Int32Array.from([49406, 0]), shape: [1, 2] }, 'fp32').data).toEqual(Float32Array.from([49406, 0]));
    const same = { data: Float32Array.from([1]), shape: [1] };
    expect(toInputType(same, 'fp16')).toBe(same);
  });
});
