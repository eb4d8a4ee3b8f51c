/**
 * Seeded mutation fuzz of the model loader (a fixed number of mutants, a few seconds). Seeds are the real fixtures;
 * each mutant is written to disk and loaded through loadModel. The only acceptable outcomes are a
 * loaded model (whose spec then re-encodes and decodes again) or a ModelFormatError naming the file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../src/errors.js';
import { listNeuralNetworkWeights } from '../../src/format/neural-network.js';
import { decodeModel, encodeModel } from '../../src/format/proto.js';
import type { PackageContents } from '../../src/format/package.js';
import { Model, loadModelSync } from '../../src/model.js';
import { allModelProtobufFiles, fixturePackages, rng } from './fixtures.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-fuzz-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

type Rand = () => number;
// CMO_FUZZ_SCALE=20 runs 20x as many mutants (for a local soak). The count is fixed, not a
// deadline, so a loaded machine runs the same mutants as an idle one.
const SCALE = Number(process.env['CMO_FUZZ_SCALE'] ?? '1') || 1;
const int = (r: Rand, n: number) => Math.floor(r() * n);

function mutate(r: Rand, input: Buffer, other: Buffer): Buffer {
  let b = Buffer.from(input);
  const rounds = 1 + int(r, 3);
  for (let k = 0; k < rounds && b.length > 0; k++) {
    const pos = int(r, b.length);
    switch (int(r, 7)) {
      case 0: // bit flip
        b[pos]! ^= 1 << int(r, 8);
        break;
      case 1: // interesting byte
        b[pos] = [0x00, 0xff, 0x7f, 0x80, 0x01, 0x0a, 0x12][int(r, 7)]!;
        break;
      case 2: // truncate
        b = b.subarray(0, pos);
        break;
      case 3: // insert random bytes
        b = Buffer.concat([b.subarray(0, pos), Buffer.from(Array.from({ length: 1 + int(r, 8) }, () => int(r, 256))), b.subarray(pos)]);
        break;
      case 4: // delete a run
        b = Buffer.concat([b.subarray(0, pos), b.subarray(pos + 1 + int(r, 16))]);
        break;
      case 5: // duplicate a chunk
        b = Buffer.concat([b.subarray(0, pos), b.subarray(pos, pos + 1 + int(r, 32)), b.subarray(pos)]);
        break;
      default: {
        // splice with another seed
        const at = int(r, Math.max(1, other.length));
        b = Buffer.concat([b.subarray(0, pos), other.subarray(at, at + 1 + int(r, 64))]);
      }
    }
  }
  return b;
}

function checkOutcome(load: () => unknown, file: string): 'ok' | 'rejected' {
  try {
    load();
    return 'ok';
  } catch (err) {
    if (!(err instanceof ModelFormatError)) throw new Error(`unexpected ${String(err)} for ${file}`, { cause: err });
    expect(err.message).toContain(path.basename(file));
    // The README promises one-line errors (a quoted snippet must not carry the file's newlines).
    expect(err.message).not.toMatch(/[\r\n]/);
    return 'rejected';
  }
}

describe('loader mutation fuzz (seeded, fixed mutant count)', () => {
  it('mutated model protobufs load or throw ModelFormatError', () => {
    // Small seeds keep the iteration rate high; the large NN files add real layer payloads.
    const seeds = allModelProtobufFiles()
      .map((f) => fs.readFileSync(f))
      .filter((b) => b.length < 700_000);
    const r = rng(0xc0de);
    const file = path.join(tmp, 'fuzz.mlmodel');
    const counts = { ok: 0, rejected: 0 };
    for (let i = 0; i < 400 * SCALE; i++) {
      const seed = seeds[int(r, seeds.length)]!;
      const mutant = mutate(r, seed, seeds[int(r, seeds.length)]!);
      // Every 8th mutant goes through the file system; the rest through the same decode path in memory.
      if (i % 8 === 0) fs.writeFileSync(file, mutant);
      const outcome = checkOutcome(() => {
        const m = i % 8 === 0 ? loadModelSync(file) : Model.fromFiles(bareContents(file, mutant));
        void m.modelType;
        void m.referencedWeightFiles;
        listNeuralNetworkWeights(m.spec, file);
        // Whatever decoded must re-encode to something that decodes again.
        decodeModel(encodeModel(m.spec, file), file);
      }, file);
      counts[outcome]++;
    }
    expect(counts.ok + counts.rejected).toBeGreaterThan(100);
    expect(counts.rejected).toBeGreaterThan(0);
    expect(counts.ok).toBeGreaterThan(0);
  });

  it('mutated Manifest.json files load or throw ModelFormatError', () => {
    const pkgs = fixturePackages().filter((p) => /src_a_ios18|matmul-softmax|kokoro/.test(p));
    const r = rng(0xfeed);
    const counts = { ok: 0, rejected: 0 };
    const dirs = pkgs.map((p, i) => {
      const dest = path.join(tmp, `pkg${i}.mlpackage`);
      fs.cpSync(p, dest, { recursive: true });
      for (const f of [dest, ...fs.readdirSync(dest, { recursive: true }).map((x) => path.join(dest, String(x)))]) fs.chmodSync(f, fs.statSync(f).isDirectory() ? 0o755 : 0o644);
      return { dest, manifest: fs.readFileSync(path.join(p, 'Manifest.json')) };
    });
    for (let i = 0; i < 150 * SCALE; i++) {
      const { dest, manifest } = dirs[int(r, dirs.length)]!;
      const other = dirs[int(r, dirs.length)]!.manifest;
      const file = path.join(dest, 'Manifest.json');
      fs.writeFileSync(file, mutate(r, manifest, other));
      counts[checkOutcome(() => loadModelSync(dest), dest)]++;
    }
    expect(counts.ok + counts.rejected).toBeGreaterThan(30);
    expect(counts.rejected).toBeGreaterThan(0);
  });
});

function bareContents(file: string, specBytes: Buffer): PackageContents {
  if (specBytes.length === 0) throw new ModelFormatError('model file is empty (0 bytes)', { file });
  return { path: file, format: 'mlmodel', manifest: undefined, rootModelPath: file, specBytes, weightsItem: undefined, weightsDir: undefined, weightFileNames: [], otherItems: [] };
}
