import { describe, expect, it } from 'vitest';
import { formatBytes, formatGB, formatTable } from '../src/cli/table.js';

describe('formatTable', () => {
  it('aligns text left and numbers right', () => {
    const t = formatTable(['name', 'bytes'], [['a', 1], ['long name', 12345]]);
    expect(t.split('\n')).toEqual(['name       bytes', '---------  -----', 'a              1', 'long name  12345']);
  });
});

describe('sizes', () => {
  it('formats binary and decimal units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(5134927368)).toBe('4.78 GiB');
    expect(formatGB(5134927368)).toBe('5.13 GB');
  });
});
