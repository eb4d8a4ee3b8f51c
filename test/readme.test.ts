import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SUPPORTED_OPS } from '../src/runtime/executor.js';

const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');

describe('README', () => {
  it('lists exactly the ops the executor supports', () => {
    const section = readme.slice(readme.indexOf('## The CPU executor'), readme.indexOf('## Layout'));
    const listed = [...section.matchAll(/`([a-z0-9_]+)`/g)].map((m) => m[1]!).filter((op) => SUPPORTED_OPS.includes(op) || /^[a-z]/.test(op));
    const ops = listed.filter((op) => !['quantize', 'dequantize', 'gru', 'rnn', 'SUPPORTED_OPS'].includes(op) && !op.startsWith('resize') && op !== 'crop_resize');
    expect([...new Set(ops)].sort()).toEqual([...SUPPORTED_OPS].sort());
  });

  it('states the set-up commands', () => {
    expect(readme).toContain('npm install');
    expect(readme).toContain('npx coreml-optimize demo');
    expect(readme).toContain('npm test');
  });
});
