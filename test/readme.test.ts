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

describe('README API section', () => {
  it('lists exactly the values the package entry point exports', async () => {
    const start = readme.indexOf('### Everything `coreml-optimize` exports');
    const section = readme.slice(start, readme.indexOf('Advanced, as subpath exports', start));
    const listed = [...section.matchAll(/`([A-Za-z_][A-Za-z0-9_]*)`/g)].map((m) => m[1]!).filter((n) => n !== 'coreml');
    const api = await import('../src/index.js');
    expect([...new Set(listed)].sort()).toEqual(Object.keys(api).sort());
  });

  it('each advanced subpath named in the README is in package.json exports and resolves', async () => {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    const modules: Record<string, Record<string, unknown>> = {
      format: await import('../src/format/index.js'),
      mil: await import('../src/mil/index.js'),
      kernels: await import('../src/kernels/index.js'),
      optimize: await import('../src/optimize/index.js'),
      pipeline: await import('../src/pipeline/index.js'),
    };
    for (const [sub, mod] of Object.entries(modules)) {
      expect(readme).toContain(`coreml-optimize/${sub}`);
      expect(pkg.exports[`./${sub}`]).toEqual({ types: `./dist/${sub}/index.d.ts`, import: `./dist/${sub}/index.js` });
      expect(Object.keys(mod).length).toBeGreaterThan(5);
    }
  });
});
