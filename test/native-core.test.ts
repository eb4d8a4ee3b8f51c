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
