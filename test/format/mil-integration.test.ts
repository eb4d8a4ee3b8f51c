/** The decoded spec.mlProgram is what src/mil works on; an edited program goes back through withProgram(). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Program } from '../../src/mil/program.js';
import { encodeModel } from '../../src/format/proto.js';
import { loadModel } from '../../src/model.js';
import { FIXTURES, sha256File } from './fixtures.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-milint-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const SRC_A = path.join(FIXTURES, 'coremltools-golden/src_a_ios18.mlpackage');

describe('format ↔ mil hand-off', () => {
  it('wrapping spec.mlProgram and saving it back via withProgram is byte-identical', async () => {
    const model = await loadModel(SRC_A);
    const program = new Program(model.program!, { file: model.path });
    expect(program.main.opset).toBeDefined();
    const derived = model.withProgram(program.toMessage());
    expect(derived.spec).not.toBe(model.spec);
    expect(Buffer.from(encodeModel(derived.spec)).equals(fs.readFileSync(path.join(SRC_A, 'Data/com.apple.CoreML/model.mlmodel')))).toBe(true);
    const dest = path.join(tmp, 'same.mlpackage');
    await derived.save(dest);
    for (const f of ['Manifest.json', 'Data/com.apple.CoreML/model.mlmodel', 'Data/com.apple.CoreML/weights/weight.bin']) {
      expect(await sha256File(path.join(dest, f)), f).toBe(await sha256File(path.join(SRC_A, f)));
    }
  });

  it('withProgram changes only the copy (spec version bump example)', async () => {
    const model = await loadModel(SRC_A);
    const derived = model.withProgram(model.program!, { changes: { specificationVersion: 10 } });
    expect(derived.specificationVersion).toBe(10);
    expect(model.specificationVersion).toBe(9);
    expect(Buffer.from(encodeModel(derived.spec)).subarray(0, 2).toString('hex')).toBe('080a');
  });
});
