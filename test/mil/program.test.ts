import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { allModelFiles, FIXTURES, hasFixtures, loadProgramFixture } from './helpers.js';
import { scanModelBytes } from '../../src/mil/proto.js';
import { tensorShape, tensorDType } from '../../src/mil/types.js';

const programFiles = allModelFiles().filter(f => scanModelBytes(new Uint8Array(fs.readFileSync(f))).mlProgram);

describe.skipIf(!hasFixtures)('Program over real fixtures', () => {
  it('finds the ML Program fixtures', () => {
    expect(programFiles.length).toBeGreaterThan(60);
  });

  it('every ML Program fixture loads and re-encodes byte-identically', () => {
    for (const f of programFiles) {
      const { program, programBytes } = loadProgramFixture(f);
      const fn = program.main;
      expect(fn.block.operations.length, f).toBeGreaterThan(0);
      expect(Buffer.from(program.encode()).equals(Buffer.from(programBytes)), f).toBe(true);
    }
  });
});
