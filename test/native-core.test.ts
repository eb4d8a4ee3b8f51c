import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildInfo, getThreads, setThreads } from '../src/index.js';

describe('native core', () => {
  it('reports how it was built', () => {
    const info = buildInfo();
    expect(['accelerate', 'openblas', 'portable']).toContain(info.blas);
    expect(info.defaultThreads).toBeGreaterThanOrEqual(1);
    expect(info.blasDetail.length).toBeGreaterThan(0);
  });

  it('reports the SIMD level this CPU runs, not the compile baseline', () => {
    const info = buildInfo();
    expect(['avx512', 'avx2+fma', 'neon', 'scalar']).toContain(info.simd);
    if (process.platform === 'linux' && process.arch === 'x64' && existsSync('/proc/cpuinfo')) {
      const flags = new Set((readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/));
      const want = flags.has('avx512f') ? 'avx512' : flags.has('avx2') && flags.has('fma') ? 'avx2+fma' : 'scalar';
      expect(info.simd).toBe(want);
    }
    if (process.arch === 'arm64') expect(info.simd).toBe('neon');
  });

  it('resizes the thread pool and restores the default with 0', () => {
    expect(setThreads(3)).toBe(3);
    expect(getThreads()).toBe(3);
    expect(setThreads(0)).toBe(buildInfo().defaultThreads);
  });

  it('rejects a bad thread count with a RangeError', () => {
    expect(() => setThreads(-1)).toThrow(RangeError);
  });
});

describe('addon loading', () => {
  it('explains what to run when the addon cannot be loaded', async () => {
    const { loadNativeAddon } = await import('../src/native.js');
    const { NativeLoadError } = await import('../src/errors.js');
    let error: unknown;
    try {
      loadNativeAddon('/nonexistent-root', '/nonexistent/coreml_optimize.node');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NativeLoadError);
    expect((error as Error).message).toMatch(/npm rebuild coreml-optimize/);
    expect((error as Error).message).toMatch(/Cannot find module/);
    expect(() => loadNativeAddon('/nonexistent-root', '')).toThrow(/No prebuild matches/);
  });
});
