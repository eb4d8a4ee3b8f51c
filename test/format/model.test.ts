import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelFormatError, UnsupportedError, WeightFileError } from '../../src/errors.js';
import { createManifest, serializeManifest, type Manifest } from '../../src/format/manifest.js';
import { encodeModel } from '../../src/format/proto.js';
import { writePackage } from '../../src/format/package.js';
import { Model, loadModel, loadModelSync } from '../../src/model.js';
import { FIXTURES, fixtureMlmodelFiles, fixturePackages, listFilesRecursive, rel, sha256File } from './fixtures.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-format-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const fx = (p: string) => path.join(FIXTURES, p);
const SRC_A = fx('coremltools-golden/src_a_ios18.mlpackage');
const KOKORO = fx('kokoro-duration-program-only/coreml/kokoro_duration.mlpackage');
const MATMUL = fx('matmul-softmax-mlprogram/model.mlpackage');
const PIPELINE = fx('createml-image-classifier/ImageClassifier.mlmodel');
const MNIST = fx('apple-mnist-classifier/MNISTClassifier.mlmodel');

async function expectSameTree(a: string, b: string): Promise<void> {
  const fa = listFilesRecursive(a);
  expect(listFilesRecursive(b)).toEqual(fa);
  for (const f of fa) expect(await sha256File(path.join(b, f)), f).toBe(await sha256File(path.join(a, f)));
  // Directories too (the empty weights/ directory must be reproduced).
  const dirs = (root: string) => {
    const out: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) {
          out.push(path.relative(root, path.join(d, e.name)));
          walk(path.join(d, e.name));
        }
      }
    };
    walk(root);
    return out.sort();
  };
  expect(dirs(b)).toEqual(dirs(a));
}

describe('load + save reproduces every fixture byte for byte', () => {
  it.each(fixturePackages().map((p) => [rel(p), p]))('%s', async (_name, pkg) => {
    const model = await loadModel(pkg);
    expect(model.format).toBe('mlpackage');
    const dest = path.join(tmp, 'rt', rel(pkg));
    const saved = await model.save(dest);
    await expectSameTree(pkg, dest);
    expect(saved.manifest).toEqual(model.manifest);
    fs.rmSync(dest, { recursive: true, force: true });
  });

  it.each(fixtureMlmodelFiles().map((p) => [rel(p), p]))('%s', async (_name, file) => {
    const model = await loadModel(file);
    expect(model.format).toBe('mlmodel');
    expect(model.manifest).toBeUndefined();
    const dest = path.join(tmp, 'rt-bare', path.basename(file));
    await model.save(dest);
    expect(await sha256File(dest)).toBe(await sha256File(file));
  });
});

describe('Model properties', () => {
  it('an ML Program package: type, version, weights dir, weight file resolution', async () => {
    const m = await loadModel(SRC_A);
    expect(m.modelType).toBe('mlProgram');
    expect(m.specificationVersion).toBe(9);
    expect(m.path).toBe(SRC_A);
    expect(m.weightsDir).toBe(path.join(SRC_A, 'Data/com.apple.CoreML/weights'));
    expect(m.weightFileNames).toEqual(['weight.bin']);
    expect(m.referencedWeightFiles).toEqual(['@model_path/weights/weight.bin']);
    expect(m.weightsMissing).toBe(false);
    expect(m.weightFilePath('@model_path/weights/weight.bin')).toBe(path.join(m.weightsDir!, 'weight.bin'));
    // Only the last component counts, like coremltools.
    expect(m.weightFilePath('anything/else/weight.bin')).toBe(path.join(m.weightsDir!, 'weight.bin'));
    expect(() => m.weightFilePath('@model_path/weights/..')).toThrow(WeightFileError);
    expect(() => m.weightFilePath('@model_path/weights/')).toThrow(WeightFileError);
    const main = m.program!.functions!['main']!;
    expect(main.opset).toBe('CoreML8');
    expect(Object.keys(main.blockSpecializations!)).toEqual(['CoreML8']);
  });

  it('program-only packages load and report the missing weights', async () => {
    const programOnly = fixturePackages().filter((p) => p.includes('program-only'));
    expect(programOnly.length).toBe(5); // whisper x2, kokoro, int8-transformer x2
    expect(programOnly).toContain(KOKORO);
    for (const pkg of programOnly) {
      const m = await loadModel(pkg);
      expect(m.modelType, pkg).toBe('mlProgram');
      expect(m.weightsDir, pkg).toBeUndefined();
      expect(m.weightsMissing, pkg).toBe(true);
      expect(m.missingWeightFiles, pkg).toEqual(['@model_path/weights/weight.bin']);
      expect(() => m.weightFilePath('@model_path/weights/weight.bin')).toThrow(WeightFileError);
    }
  });

  it('an ML Program without any blob misses nothing, with or without a weights dir', async () => {
    // The fixture snapshot lost argmax's empty weights/ directory; the manifest still lists it.
    const argmax = await loadModel(fx('executor-reference/argmax/model.mlpackage'));
    expect(argmax.manifest && Object.values(argmax.manifest.itemInfoEntries).map((i) => i.name).sort()).toEqual(['model.mlmodel', 'weights']);
    expect(argmax.weightsDir).toBeUndefined();
    expect(argmax.referencedWeightFiles).toEqual([]);
    expect(argmax.weightsMissing).toBe(false);
    // matmul-softmax: A and B are function inputs, the program has no blob and no weights item.
    const matmul = await loadModel(MATMUL);
    expect(matmul.weightsDir).toBeUndefined();
    expect(matmul.referencedWeightFiles).toEqual([]);
    expect(matmul.weightsMissing).toBe(false);
    // A saved copy with an (empty) weights directory.
    const withDir = await Model.fromSpec(argmax.spec, { weightFiles: [] }).save(path.join(tmp, 'argmax.mlpackage'));
    expect(withDir.weightsDir).toBe(path.join(tmp, 'argmax.mlpackage/Data/com.apple.CoreML/weights'));
    expect(withDir.weightFileNames).toEqual([]);
    expect(withDir.weightsMissing).toBe(false);
  });

  it('bare .mlmodel types', () => {
    expect(loadModelSync(PIPELINE).modelType).toBe('pipelineClassifier');
    expect(loadModelSync(MNIST).modelType).toBe('neuralNetworkClassifier');
    expect(loadModelSync(fx('tiny-drawing-embedding/examples/updatable_models/models/TinyDrawingEmbedding.mlmodel')).modelType).toBe('neuralNetwork');
    const pipe = loadModelSync(PIPELINE).spec.pipelineClassifier!.pipeline!;
    expect(pipe.models!.map((m) => Object.keys(m).find((k) => k !== 'specificationVersion' && k !== 'description'))).toEqual([
      'visionFeaturePrint',
      'glmClassifier',
    ]);
  });
});

describe('saving changed and new models', () => {
  it('derive() with a new weight file moved into place; original untouched', async () => {
    const m = await loadModel(SRC_A);
    const before = await sha256File(path.join(m.weightsDir!, 'weight.bin'));
    const newWeights = path.join(tmp, 'new-weight.bin');
    fs.writeFileSync(newWeights, Buffer.from('not really a blob file'));
    const spec = m.spec;
    const derived = m.derive(spec, { weightFiles: [{ name: 'weight.bin', from: newWeights, move: true }] });
    expect(derived.path).toBeUndefined();
    expect(derived.weightFilePath('@model_path/weights/weight.bin')).toBe(newWeights);
    // The new set is complete: other names do not fall back to the source's weights directory.
    expect(() => derived.weightFilePath('@model_path/weights/weight_1.bin')).toThrow(WeightFileError);
    // derive() without weightFiles keeps the source's weight files.
    expect(m.derive(spec).weightFilePath('@model_path/weights/weight.bin')).toBe(path.join(m.weightsDir!, 'weight.bin'));
    const dest = path.join(tmp, 'derived.mlpackage');
    const saved = await derived.save(dest);
    expect(fs.existsSync(newWeights)).toBe(false);
    expect(fs.readFileSync(path.join(saved.weightsDir!, 'weight.bin'), 'utf8')).toBe('not really a blob file');
    // Same identifiers as the source unless asked otherwise.
    expect(fs.readFileSync(path.join(dest, 'Manifest.json'))).toEqual(fs.readFileSync(path.join(SRC_A, 'Manifest.json')));
    expect(await sha256File(path.join(m.weightsDir!, 'weight.bin'))).toBe(before);

    const fresh = await m.save(path.join(tmp, 'fresh-ids.mlpackage'), { newIdentifiers: true });
    expect(Object.keys(fresh.manifest!.itemInfoEntries).some((id) => id in m.manifest!.itemInfoEntries)).toBe(false);
    expect(Object.keys(fresh.manifest!.itemInfoEntries).every((id) => /^[0-9A-F-]{36}$/.test(id))).toBe(true);
  });

  it('Model.fromSpec builds a fresh coremltools-style package', async () => {
    const w = path.join(tmp, 'w.bin');
    fs.writeFileSync(w, Buffer.alloc(64, 7));
    const m = Model.fromSpec({ specificationVersion: 7, mlProgram: { version: 1 } }, { weightFiles: [{ name: 'weight.bin', from: w }] });
    const dest = path.join(tmp, 'fromspec.mlpackage');
    const saved = await m.save(dest);
    expect(fs.readFileSync(path.join(dest, 'Data/com.apple.CoreML/model.mlmodel')).toString('hex')).toBe('0807b21f020801');
    expect(Buffer.byteLength(fs.readFileSync(path.join(dest, 'Manifest.json')))).toBe(617);
    expect(saved.weightFileNames).toEqual(['weight.bin']);
    expect(fs.existsSync(w)).toBe(true); // copied, not moved
  });

  it('adds a weights item under the root author when a package had none', async () => {
    const m = await loadModel(MATMUL);
    const w = path.join(tmp, 'mm.bin');
    fs.writeFileSync(w, 'x');
    const saved = await m.derive(m.spec, { weightFiles: [{ name: 'weight.bin', from: w }] }).save(path.join(tmp, 'mm.mlpackage'));
    expect(saved.weightsDir).toBe(path.join(tmp, 'mm.mlpackage/Data/com.ishank.Test/weights'));
    expect(saved.weightsMissing).toBe(false);
  });

  it('an ML Program cannot be saved as a bare .mlmodel', async () => {
    const m = await loadModel(SRC_A);
    await expect(m.save(path.join(tmp, 'x.mlmodel'))).rejects.toBeInstanceOf(UnsupportedError);
    expect(fs.existsSync(path.join(tmp, 'x.mlmodel'))).toBe(false);
  });

  it('a neural network .mlmodel can be saved as a package (no weights item)', async () => {
    const saved = await loadModelSync(MNIST).save(path.join(tmp, 'mnist.mlpackage'));
    expect(saved.format).toBe('mlpackage');
    expect(Object.keys(saved.manifest!.itemInfoEntries)).toHaveLength(1);
    expect(await sha256File(path.join(tmp, 'mnist.mlpackage/Data/com.apple.CoreML/model.mlmodel'))).toBe(await sha256File(MNIST));
  });

  it('a failed save leaves no output, keeps an existing destination and the moved source', async () => {
    const m = await loadModel(SRC_A);
    const dest = path.join(tmp, 'fail.mlpackage');
    const keep = path.join(tmp, 'keep.bin');
    fs.writeFileSync(keep, 'k');
    const bad = m.derive(m.spec, {
      weightFiles: [
        { name: 'weight.bin', from: keep, move: true },
        { name: 'other.bin', from: path.join(tmp, 'does-not-exist.bin') },
      ],
    });
    await expect(bad.save(dest)).rejects.toThrow();
    expect(fs.existsSync(dest)).toBe(false);
    expect(fs.readFileSync(keep, 'utf8')).toBe('k');
    expect(fs.readdirSync(tmp).filter((n) => n.startsWith('.fail.mlpackage'))).toEqual([]);

    await m.save(dest);
    const before = await sha256File(path.join(dest, 'Manifest.json'));
    await expect(bad.save(dest)).rejects.toThrow();
    await expectSameTree(SRC_A, dest);
    expect(await sha256File(path.join(dest, 'Manifest.json'))).toBe(before);

    // Overwriting an existing package with a successful save replaces it completely.
    const mnistPkg = await loadModelSync(MNIST).save(dest);
    expect(listFilesRecursive(dest)).toEqual(['Data/com.apple.CoreML/model.mlmodel', 'Manifest.json']);
    expect(mnistPkg.modelType).toBe('neuralNetworkClassifier');
  });

  it('saving onto itself rewrites identical files', async () => {
    const dest = path.join(tmp, 'self.mlpackage');
    const m = await (await loadModel(SRC_A)).save(dest);
    await m.save(dest);
    await expectSameTree(SRC_A, dest);
  });

  it('writePackage rejects weight names that are not plain file names', async () => {
    for (const name of ['../x.bin', 'a/b.bin', '..', '']) {
      await expect(writePackage(path.join(tmp, 'bad-name.mlpackage'), { specBytes: encodeModel({ specificationVersion: 7 }), weightFiles: [{ name, from: __filename }] })).rejects.toBeInstanceOf(ModelFormatError);
    }
    expect(fs.existsSync(path.join(tmp, 'bad-name.mlpackage'))).toBe(false);
  });
});

describe('bad packages and files throw ModelFormatError naming the file', () => {
  const makePackage = (name: string, manifest: Manifest | string, files: Record<string, Uint8Array | string> = {}) => {
    const pkg = path.join(tmp, 'bad', name);
    fs.mkdirSync(pkg, { recursive: true });
    fs.writeFileSync(path.join(pkg, 'Manifest.json'), typeof manifest === 'string' ? manifest : serializeManifest(manifest));
    for (const [f, data] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(pkg, f)), { recursive: true });
      fs.writeFileSync(path.join(pkg, f), data);
    }
    return pkg;
  };
  const goodSpec = fs.readFileSync(path.join(SRC_A, 'Data/com.apple.CoreML/model.mlmodel'));
  const expectFormatError = async (p: string, pattern: RegExp, fileInMessage: string) => {
    const err = await loadModel(p).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toContain(fileInMessage);
    expect((err as Error).message).toMatch(pattern);
  };
  const withRoot = (p: string) => {
    const m = createManifest({ withWeights: true });
    m.itemInfoEntries[m.rootModelIdentifier]!.path = p;
    return m;
  };

  it('0-byte model.mlmodel', async () => {
    const pkg = makePackage('empty.mlpackage', createManifest(), { 'Data/com.apple.CoreML/model.mlmodel': '' });
    await expectFormatError(pkg, /empty/, path.join(pkg, 'Data/com.apple.CoreML/model.mlmodel'));
    const bare = path.join(tmp, 'bad', 'empty.mlmodel');
    fs.writeFileSync(bare, '');
    await expectFormatError(bare, /empty/, bare);
  });

  it('truncated model.mlmodel', async () => {
    const pkg = makePackage('trunc.mlpackage', createManifest(), { 'Data/com.apple.CoreML/model.mlmodel': goodSpec.subarray(0, goodSpec.length - 3) });
    await expectFormatError(pkg, /not a valid Model protobuf/, 'model.mlmodel');
  });

  it('missing model file', async () => {
    const pkg = makePackage('nomodel.mlpackage', createManifest());
    await expectFormatError(pkg, /does not exist/, path.join(pkg, 'Data/com.apple.CoreML/model.mlmodel'));
  });

  it('missing Manifest.json, non-JSON manifest, wrong version', async () => {
    const dir = path.join(tmp, 'bad', 'nomanifest.mlpackage');
    fs.mkdirSync(dir, { recursive: true });
    await expectFormatError(dir, /Manifest/, path.join(dir, 'Manifest.json'));
    const nonJson = makePackage('nonjson.mlpackage', 'not json at all');
    await expectFormatError(nonJson, /not valid JSON/, path.join(nonJson, 'Manifest.json'));
    const v2 = makePackage('v2.mlpackage', serializeManifest({ ...createManifest(), fileFormatVersion: '2.0.0' }));
    await expectFormatError(v2, /fileFormatVersion/, path.join(v2, 'Manifest.json'));
  });

  it('paths with "..", absolute paths, missing root item', async () => {
    const dotdot = makePackage('dotdot.mlpackage', withRoot('../outside/model.mlmodel'));
    await expectFormatError(dotdot, /escapes the package/, path.join(dotdot, 'Manifest.json'));
    const abs = makePackage('abs.mlpackage', withRoot(path.join(tmp, 'x/model.mlmodel')));
    await expectFormatError(abs, /absolute/, path.join(abs, 'Manifest.json'));
    const noRoot = makePackage('noroot.mlpackage', serializeManifest({ ...createManifest(), rootModelIdentifier: 'MISSING' }));
    await expectFormatError(noRoot, /rootModelIdentifier/, path.join(noRoot, 'Manifest.json'));
  });

  it('a symlink that leaves the package', async () => {
    const outside = path.join(tmp, 'bad', 'outside-model.mlmodel');
    fs.writeFileSync(outside, goodSpec);
    const pkg = makePackage('symlink.mlpackage', createManifest());
    fs.mkdirSync(path.join(pkg, 'Data/com.apple.CoreML'), { recursive: true });
    fs.symlinkSync(outside, path.join(pkg, 'Data/com.apple.CoreML/model.mlmodel'));
    await expectFormatError(pkg, /outside the package/, path.join(pkg, 'Manifest.json'));

    const pkg2 = makePackage('symlink-dir.mlpackage', createManifest());
    fs.symlinkSync(path.join(tmp, 'bad'), path.join(pkg2, 'Data'));
    await expectFormatError(pkg2, /outside the package/, path.join(pkg2, 'Manifest.json'));
  });

  it('a weight file symlinked out of the package is not listed nor resolved', async () => {
    const dest = path.join(tmp, 'bad', 'weight-link.mlpackage');
    await (await loadModel(SRC_A)).save(dest);
    const w = path.join(dest, 'Data/com.apple.CoreML/weights/weight.bin');
    fs.rmSync(w);
    fs.symlinkSync(path.join(SRC_A, 'Data/com.apple.CoreML/weights/weight.bin'), w);
    const m = await loadModel(dest);
    expect(m.weightFileNames).toEqual([]);
    expect(m.weightsMissing).toBe(true);
    expect(() => m.weightFilePath('@model_path/weights/weight.bin')).toThrow(WeightFileError);
  });

  it('a path that does not exist', async () => {
    await expectFormatError(path.join(tmp, 'nope.mlpackage'), /cannot open/, 'nope.mlpackage');
  });

  it('a protobuf without specificationVersion is not a model', async () => {
    const bare = path.join(tmp, 'bad', 'nospec.mlmodel');
    fs.writeFileSync(bare, Buffer.from('b21f020801', 'hex'));
    await expectFormatError(bare, /specificationVersion/, bare);
  });
});
