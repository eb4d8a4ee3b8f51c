import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SUPPORTED_OPS } from '../src/runtime/executor.js';

const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');

describe('README', () => {
  const section = readme.slice(readme.indexOf('## The CPU executor'), readme.indexOf('## Layout'));

  it('lists exactly the ops the executor supports', () => {
    const start = section.indexOf('Supported ops (`SUPPORTED_OPS`):');
    expect(start).toBeGreaterThan(0);
    const list = section.slice(start).split('\n\n')[1] ?? '';
    const listed = [...list.matchAll(/`([a-z0-9_]+)`/g)].map((m) => m[1]!);
    expect(listed.length).toBe(new Set(listed).size);
    expect([...listed].sort()).toEqual([...SUPPORTED_OPS].sort());
  });

  it('names a reason for every op it does not support, and none of them is supported', () => {
    const start = section.indexOf('Not supported, and why:');
    expect(start).toBeGreaterThan(0);
    const named = [...section.slice(start).matchAll(/^- `([a-z0-9_]+)`: \S/gm)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(0);
    for (const op of named) expect(SUPPORTED_OPS).not.toContain(op);
  });

  it('states the set-up commands', () => {
    expect(readme).toContain('npm install');
    expect(readme).toContain('npx coreml-optimize demo');
    expect(readme).toContain('npm test');
  });
});
