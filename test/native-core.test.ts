import { describe, expect, it } from 'vitest';
import { buildInfo, getThreads, setThreads } from '../src/index.js';

describe('native core', () => {
  it('reports how it was built', () => {
    const info = buildInfo();
    expect(['accelerate', 'openblas', 'portable']).toContain(info.blas);
    expect(info.defaultThreads).toBeGreaterThanOrEqual(1);
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
