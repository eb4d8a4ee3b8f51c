/** Open the ML Program of a loaded Model, with its weight files read on demand. */
import type { Model } from '../model.js';
import { UnsupportedError } from '../errors.js';
import { BlobFile } from '../format/blob.js';
import { Program, type BlobSource, type ProgramMsg } from './program.js';

export interface OpenedProgram {
  program: Program;
  /** Close the weight files opened so far. */
  close(): void;
}

/**
 * The Program of `model.spec.mlProgram`, wrapping the model's own message (edits go straight
 * into model.spec). Weight files are opened lazily on the first blob read; a program-only
 * package can be inspected and fails only when blob data is actually needed.
 */
export function openProgram(model: Model, options: { openBlob?: (file: string) => BlobSource & { close?(): void } } = {}): OpenedProgram {
  const msg = model.program;
  const file = model.path;
  if (!msg) throw new UnsupportedError(`not an ML Program (model type ${model.modelType ?? 'unknown'})`, { file });
  const open = options.openBlob ?? ((f: string) => BlobFile.open(f));
  const readers = new Map<string, BlobSource & { close?(): void }>();
  const program = new Program(msg as unknown as ProgramMsg, {
    file,
    blobs: fileName => {
      const p = model.weightFilePath(fileName);
      let r = readers.get(p);
      if (!r) readers.set(p, (r = open(p)));
      return r;
    },
  });
  return { program, close: () => { for (const r of readers.values()) r.close?.(); readers.clear(); } };
}
