import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../src/errors.js';
import {
  createManifest,
  findWeightsItem,
  newItemIdentifier,
  parseManifest,
  serializeManifest,
  withNewIdentifiers,
  type Manifest,
} from '../../src/format/manifest.js';
import { fixturePackages, rel } from './fixtures.js';

const packages = fixturePackages();

describe('Manifest.json of every fixture', () => {
  it('finds the fixture packages', () => {
    expect(packages.length).toBe(117);
  });

  it.each(packages.map((p) => [rel(p), p]))('%s re-serializes byte for byte', (_name, pkg) => {
    const file = path.join(pkg, 'Manifest.json');
    const bytes = fs.readFileSync(file);
    const manifest = parseManifest(bytes, file);
    expect(Buffer.from(serializeManifest(manifest), 'utf8').equals(bytes)).toBe(true);
    // The root is found through rootModelIdentifier, never by position.
    expect(manifest.itemInfoEntries[manifest.rootModelIdentifier]!.name).toBe('model.mlmodel');
  });

  it('finds the weights item after the model item even when it sorts first', () => {
    const pkg = packages.find((p) => p.endsWith('pal_n4_pertensor_ios16.mlpackage'))!;
    const file = path.join(pkg, 'Manifest.json');
    const m = parseManifest(fs.readFileSync(file), file);
    const ids = Object.keys(m.itemInfoEntries);
    const weights = findWeightsItem(m)!;
    expect(weights.item.path).toBe('com.apple.CoreML/weights');
    expect(ids.indexOf(weights.id)).toBe(0);
  });

  it('accepts a non-Apple author (matmul-softmax: com.ishank.Test) and no weights item', () => {
    const pkg = packages.find((p) => p.includes('matmul-softmax'))!;
    const file = path.join(pkg, 'Manifest.json');
    const m = parseManifest(fs.readFileSync(file), file);
    expect(m.itemInfoEntries[m.rootModelIdentifier]!.path).toBe('com.ishank.Test/model.mlmodel');
    expect(findWeightsItem(m)).toBeUndefined();
  });
});

describe('new manifests', () => {
  it('identifiers are upper-case version-4 UUIDs', () => {
    for (let i = 0; i < 50; i++) {
      expect(newItemIdentifier()).toMatch(/^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
    }
  });

  it('a standard two-item manifest is 617 bytes in the coremltools layout', () => {
    const m = createManifest({ withWeights: true });
    const text = serializeManifest(m);
    expect(Buffer.byteLength(text)).toBe(617);
    expect(text.endsWith('}\n')).toBe(true);
    expect(text).not.toContain('\r');
    const [modelId] = Object.entries(m.itemInfoEntries).find(([, it]) => it.name === 'model.mlmodel')!;
    const [weightsId] = Object.entries(m.itemInfoEntries).find(([, it]) => it.name === 'weights')!;
    const [first, second] = [modelId, weightsId].sort();
    const item = (id: string) =>
      id === modelId
        ? `        "${id}": {\n            "author": "com.apple.CoreML",\n            "description": "CoreML Model Specification",\n            "name": "model.mlmodel",\n            "path": "com.apple.CoreML/model.mlmodel"\n        }`
        : `        "${id}": {\n            "author": "com.apple.CoreML",\n            "description": "CoreML Model Weights",\n            "name": "weights",\n            "path": "com.apple.CoreML/weights"\n        }`;
    expect(text).toBe(
      `{\n    "fileFormatVersion": "1.0.0",\n    "itemInfoEntries": {\n${item(first!)},\n${item(second!)}\n    },\n    "rootModelIdentifier": "${modelId}"\n}\n`,
    );
  });

  it('withNewIdentifiers keeps the items and moves the root identifier along', () => {
    const m = createManifest({ withWeights: true });
    const n = withNewIdentifiers(m);
    expect(Object.keys(n.itemInfoEntries).some((k) => k in m.itemInfoEntries)).toBe(false);
    expect(n.itemInfoEntries[n.rootModelIdentifier]!.path).toBe('com.apple.CoreML/model.mlmodel');
    expect(Object.values(n.itemInfoEntries).map((i) => i.path).sort()).toEqual(Object.values(m.itemInfoEntries).map((i) => i.path).sort());
  });

  it('sorts keys by UTF-8 bytes and keeps unknown keys', () => {
    const m = { ...createManifest(), zExtra: ['a', { b: 1, a: true }], aExtra: {} } as unknown as Manifest;
    const text = serializeManifest(m);
    expect(text.indexOf('"aExtra": {}')).toBeGreaterThan(0);
    expect(text.indexOf('"aExtra"')).toBeLessThan(text.indexOf('"fileFormatVersion"'));
    expect(text).toContain('"zExtra": [\n        "a",\n        {\n            "a": true,\n            "b": 1\n        }\n    ]');
    expect(serializeManifest(parseManifest(text, 'x'))).toBe(text);
  });
});

describe('invalid manifests throw ModelFormatError naming the file', () => {
  const base = (): Record<string, unknown> => JSON.parse(serializeManifest(createManifest({ withWeights: true })));
  const file = '/pkg/Bad.mlpackage/Manifest.json';
  const expectBad = (text: string, pattern: RegExp) => {
    let err: unknown;
    try {
      parseManifest(text, file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(pattern);
  };
  const withRootPath = (p: string) => {
    const m = base() as unknown as Manifest;
    m.itemInfoEntries[m.rootModelIdentifier]!.path = p;
    return JSON.stringify(m);
  };

  it('non-JSON', () => expectBad('{"fileFormatVersion": ', /not valid JSON/));
  it('not an object', () => expectBad('[1,2]', /JSON object/));
  it('wrong fileFormatVersion', () => {
    for (const v of ['2.0.0', '1.1.0', '1.0.1', '1.0', 'x']) expectBad(JSON.stringify({ ...base(), fileFormatVersion: v }), /fileFormatVersion/);
  });
  it('missing fileFormatVersion', () => {
    const m = base();
    delete m['fileFormatVersion'];
    expectBad(JSON.stringify(m), /fileFormatVersion/);
  });
  it('"..", absolute and empty item paths', () => {
    expectBad(withRootPath('../model.mlmodel'), /escapes the package/);
    expectBad(withRootPath('com.apple.CoreML/../../x'), /escapes the package/);
    expectBad(withRootPath('/etc/passwd'), /absolute/);
    expectBad(withRootPath('C:\\x\\model.mlmodel'), /absolute/);
    expectBad(withRootPath(''), /empty/);
  });
  it('missing root item', () => expectBad(JSON.stringify({ ...base(), rootModelIdentifier: 'NOPE' }), /rootModelIdentifier "NOPE"/));
  it('missing rootModelIdentifier', () => {
    const m = base();
    delete m['rootModelIdentifier'];
    expectBad(JSON.stringify(m), /rootModelIdentifier/);
  });
  it('item without one of the four string keys', () => {
    const m = base() as unknown as Manifest;
    delete (m.itemInfoEntries[m.rootModelIdentifier] as Partial<Record<string, unknown>>)['description'];
    expectBad(JSON.stringify(m), /no string "description"/);
  });
  it('duplicate (name, author) pair', () => {
    const m = base() as unknown as Manifest;
    m.itemInfoEntries['DUP'] = { ...m.itemInfoEntries[m.rootModelIdentifier]!, path: 'com.apple.CoreML/other' };
    expectBad(JSON.stringify(m), /same name and author/);
  });
});
