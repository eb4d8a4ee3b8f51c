// Test-side loader for .mlpackage fixtures (Manifest.json -> root model -> Model proto with the
// ML Program). Replace with the format helper's loadModel once it is on main.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { ExecutorModel } from '../../src/runtime/executor.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let modelType: protobuf.Type | undefined;

function getModelType(): protobuf.Type {
  if (!modelType) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (target === 'MIL.proto' ? path.join(here, '../../proto/MIL.proto') : target);
    root.loadSync(path.join(here, 'model-wrapper.proto'), { keepCase: false });
    modelType = root.lookupType('CoreML.Specification.Model');
  }
  return modelType;
}

export interface LoadedFixture extends ExecutorModel {
  specificationVersion: number;
}

export function loadPackage(pkg: string): LoadedFixture {
  const manifest = JSON.parse(readFileSync(path.join(pkg, 'Manifest.json'), 'utf8')) as {
    rootModelIdentifier: string;
    itemInfoEntries: Record<string, { path: string }>;
  };
  const root = manifest.itemInfoEntries[manifest.rootModelIdentifier];
  if (!root) throw new Error(`${pkg}: Manifest.json has no root model entry`);
  const modelPath = path.join(pkg, 'Data', root.path);
  const msg = getModelType().decode(readFileSync(modelPath)) as unknown as {
    specificationVersion: number;
    description: ExecutorModel['description'];
    mlProgram: ExecutorModel['program'];
  };
  return {
    program: msg.mlProgram,
    description: msg.description,
    modelDir: path.dirname(modelPath),
    path: modelPath,
    specificationVersion: msg.specificationVersion,
  };
}
