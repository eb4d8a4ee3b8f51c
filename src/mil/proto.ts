/**
 * protobufjs types of MIL.proto (package CoreML.Specification.MILSpec), loaded once from the
 * package's proto/ folder. Field names are camelCase (protobufjs default).
 */
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { ModelFormatError } from '../errors.js';
import type { ProgramMsg } from './program.js';

let root: protobuf.Root | undefined;

function milRoot(): protobuf.Root {
  if (!root) {
    // src/mil/ and dist/mil/ are both two levels below the package root.
    const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../proto/MIL.proto');
    root = protobuf.loadSync(file);
  }
  return root;
}

export function milType(name: string): protobuf.Type {
  return milRoot().lookupType(`CoreML.Specification.MILSpec.${name}`);
}

export function decodeProgram(bytes: Uint8Array, file?: string): ProgramMsg {
  try {
    return milType('Program').decode(bytes) as unknown as ProgramMsg;
  } catch (cause) {
    throw new ModelFormatError(`cannot decode the ML Program: ${(cause as Error).message}`, { file, cause });
  }
}

export function encodeProgram(program: ProgramMsg): Uint8Array {
  return milType('Program').encode(program as unknown as protobuf.Message).finish();
}

/**
 * Find top-level fields of a `Model` message without a schema: returns specificationVersion
 * (field 1) and the raw bytes of `mlProgram` (field 502). Lets MIL code and tests work on a
 * model.mlmodel without Model.proto.
 */
export function scanModelBytes(buf: Uint8Array, file?: string): { specificationVersion: number; mlProgram?: Uint8Array; topLevelFields: number[] } {
  const r = protobuf.Reader.create(buf);
  let specificationVersion = 0;
  let mlProgram: Uint8Array | undefined;
  const fields: number[] = [];
  try {
    while (r.pos < r.len) {
      const tag = r.uint32();
      const field = tag >>> 3;
      fields.push(field);
      if (field === 1 && (tag & 7) === 0) specificationVersion = r.int32();
      else if (field === 502 && (tag & 7) === 2) mlProgram = r.bytes();
      else r.skipType(tag & 7);
    }
  } catch (cause) {
    throw new ModelFormatError(`not a Core ML model protobuf (${(cause as Error).message})`, { file, cause });
  }
  return { specificationVersion, mlProgram, topLevelFields: fields };
}
