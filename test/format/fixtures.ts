/** Shared helpers for the format tests: where the real fixtures are and how to hash files by streaming. */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures');

function walk(dir: string, visit: (p: string, d: fs.Dirent) => boolean | void): void {
  for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, d.name);
    if (visit(p, d) === false) continue;
    if (d.isDirectory()) walk(p, visit);
  }
}

/** Every `.mlpackage` directory under fixtures/ (sorted). */
export function fixturePackages(): string[] {
  const out: string[] = [];
  walk(FIXTURES, (p, d) => {
    if (d.isDirectory() && p.endsWith('.mlpackage')) {
      out.push(p);
      return false;
    }
  });
  return out.sort();
}

/** Every bare `.mlmodel` file (not inside a package) under fixtures/. */
export function fixtureMlmodelFiles(): string[] {
  const out: string[] = [];
  walk(FIXTURES, (p, d) => {
    if (d.isDirectory() && p.endsWith('.mlpackage')) return false;
    if (d.isFile() && p.endsWith('.mlmodel')) out.push(p);
  });
  return out.sort();
}

/** Every protobuf model file: bare .mlmodel files and every model.mlmodel inside packages. */
export function allModelProtobufFiles(): string[] {
  const out: string[] = [];
  walk(FIXTURES, (p, d) => {
    if (d.isFile() && p.endsWith('.mlmodel')) out.push(p);
  });
  return out.sort();
}

export function rel(p: string): string {
  return path.relative(FIXTURES, p);
}

/** sha256 of a file, streamed (weight files can be GBs). */
export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    fs.createReadStream(file)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** Relative paths of all regular files under dir (sorted). */
export function listFilesRecursive(dir: string): string[] {
  const out: string[] = [];
  walk(dir, (p, d) => {
    if (d.isFile()) out.push(path.relative(dir, p));
  });
  return out.sort();
}

/** Deterministic PRNG for seeded fuzz loops. */
export { mulberry32 as rng } from '../../src/util/random.js';
