/**
 * Temporary weight files of unsaved models: named after the owning process, removed on dispose and
 * on save, and swept once their process is gone (a SIGKILLed run must not fill the disk).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProgramBuilder } from '../../src/mil/builder.js';
import { OptimizationConfig } from '../../src/optimize/config.js';
import { palettizeWeights } from '../../src/optimize/palettize.js';
import { createTempDir, isLiveTempDir, liveTempDirCount, removeTempDir, sweepStaleTempDirs } from '../../src/util/temp-dirs.js';
import { syntheticFp16 } from '../../src/util/synthetic.js';
import { scratchDirs } from '../scratch.js';

const scratch = scratchDirs('cmo-tempdirs-');

async function compressedModel(dir: string) {
  const b = new ProgramBuilder({ specVersion: 9, weightsPath: path.join(dir, 'src.bin') });
  const x = b.input('x', 'fp16', [1, 64]);
  b.output(b.op('linear', { x, weight: b.const('w', syntheticFp16({ count: 64 * 64, fanIn: 64, seed: 3 }), [64, 64], 'fp16') }, { name: 'fc' }), 'y');
  const model = await b.save(path.join(dir, 'src.mlpackage'));
  const config = OptimizationConfig.fromDict({ config_type: 'OpPalettizerConfig', global_config: { nbits: 2, weight_threshold: 100 } });
  return palettizeWeights(model, config);
}

/** The temporary directory an unsaved compressed model's weight.bin lives in. */
function weightDirOf(model: { weightFilePath(name: string): string }): string {
  return path.dirname(model.weightFilePath('@model_path/weights/weight.bin'));
}

describe('temporary directories', () => {
  it('are named after the process and removed by removeTempDir', () => {
    const dir = createTempDir();
    expect(path.basename(dir)).toMatch(new RegExp(`^coreml-optimize-${process.pid}-`));
    expect(isLiveTempDir(dir)).toBe(true);
    removeTempDir(dir);
    expect(fs.existsSync(dir)).toBe(false);
    expect(isLiveTempDir(dir)).toBe(false);
  });

  it('an unsaved compressed model releases its weight file on dispose()', async () => {
    const model = await compressedModel(scratch());
    const dir = weightDirOf(model);
    expect(isLiveTempDir(dir)).toBe(true);
    expect(fs.existsSync(path.join(dir, 'weight.bin'))).toBe(true);
    const before = liveTempDirCount();
    model.dispose();
    expect(fs.existsSync(dir)).toBe(false);
    expect(liveTempDirCount()).toBe(before - 1);
  });

  it('using-declarations dispose it too ([Symbol.asyncDispose])', async () => {
    const model = await compressedModel(scratch());
    const dir = weightDirOf(model);
    await model[Symbol.asyncDispose]();
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('saving moves the weight file out and removes the emptied directory', async () => {
    const work = scratch();
    const model = await compressedModel(work);
    const dir = weightDirOf(model);
    const saved = await model.save(path.join(work, 'out.mlpackage'));
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.statSync(saved.weightFilePath('@model_path/weights/weight.bin')).size).toBeGreaterThan(0);
  });

  it('sweeps the directories of a process that was killed, keeps those of live processes', () => {
    const root = scratch();
    // A real process makes its directory and dies by SIGKILL (no exit handlers run).
    const child = spawnSync(process.execPath, ['-e', `
      const fs = require('fs'), path = require('path');
      const d = fs.mkdtempSync(path.join(${JSON.stringify(root)}, 'coreml-optimize-' + process.pid + '-'));
      fs.writeFileSync(path.join(d, 'weight.bin'), Buffer.alloc(4096));
      console.log(d);
      process.kill(process.pid, 'SIGKILL');`], { encoding: 'utf8' });
    expect(child.signal).toBe('SIGKILL');
    const orphan = child.stdout.trim();
    expect(fs.existsSync(path.join(orphan, 'weight.bin'))).toBe(true);
    const alive = fs.mkdtempSync(path.join(root, `coreml-optimize-${process.ppid}-`));
    const unrelated = fs.mkdtempSync(path.join(root, 'coreml-optimize-demo-'));
    expect(sweepStaleTempDirs(root)).toEqual([orphan]);
    expect(fs.existsSync(orphan)).toBe(false);
    expect(fs.existsSync(alive)).toBe(true);
    expect(fs.existsSync(unrelated)).toBe(true);
  });

  it('the suite runs in its own TMPDIR (checked empty at the end by test/global-setup.ts)', () => {
    expect(path.basename(os.tmpdir())).toMatch(/^cmo-test-run-/);
  });
});
