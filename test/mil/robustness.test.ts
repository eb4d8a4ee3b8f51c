import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { GOLDEN, FIXTURES, hasFixtures, packageModelFile } from './helpers.js';
import { scanModelBytes } from '../../src/mil/proto.js';
import { Program } from '../../src/mil/program.js';
import { listWeights, constantBytes } from '../../src/mil/weights.js';
import { CoreMLOptimizeError } from '../../src/errors.js';
import { describeModel } from '../../src/cli/commands/info-report.js';

/** xorshift32: reproducible mutations. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; };
}

function mutate(src: Uint8Array, r: () => number): Uint8Array {
  const b = new Uint8Array(src);
  const k = 1 + Math.floor(r() * 4);
  for (let i = 0; i < k; i++) {
    const at = Math.floor(r() * b.length);
    const mode = r();
    if (mode < 0.6) b[at] = Math.floor(r() * 256);
    else if (mode < 0.8) b[at]! ^= 1 << Math.floor(r() * 8);
    else return b.subarray(0, at);
  }
  return b;
}

describe.skipIf(!hasFixtures)('malformed programs give typed errors, never crashes', () => {
  const files = [
    packageModelFile(path.join(GOLDEN, 'joint_prune50_pal4gs16_ios18.mlpackage')),
    packageModelFile(path.join(GOLDEN, 'pal_n4_pertensor_ios16.mlpackage')),
    packageModelFile(path.join(GOLDEN, 'q_int8_linsym_perchannel_ios16.mlpackage')),
    path.join(FIXTURES, 'superpoint/superpoint.mlpackage/Data/com.apple.CoreML/model.mlmodel'),
  ];
  for (const file of files) {
    it(path.basename(path.dirname(path.dirname(path.dirname(file)))), () => {
      const programBytes = scanModelBytes(new Uint8Array(fs.readFileSync(file))).mlProgram!;
      const r = rng(0x5eed + file.length);
      let decoded = 0;
      for (let iter = 0; iter < Number(process.env.CMO_FUZZ_ITERS ?? 400); iter++) {
        const bytes = mutate(programBytes, r);
        try {
          const p = Program.decode(bytes, { file });
          decoded++;
          listWeights(p, { floatOnly: false, minRank: 0 });
          constantBytes(p);
          for (const op of p.main.walk()) if (op.isConst) { const v = op.constValue(); if (v.kind === 'immediate') v.data(); }
          describeModel({ specificationVersion: 9, mlProgram: p.msg as never }, { file });
        } catch (e) {
          if (!(e instanceof CoreMLOptimizeError)) throw new Error(`iteration ${iter}: ${(e as Error).stack}`);
          expect((e as Error).message).toContain(file);
        }
      }
      expect(decoded).toBeGreaterThan(0);
    });
  }
});
