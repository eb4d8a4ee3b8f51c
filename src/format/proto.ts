/**
 * Protobuf codec for Core ML models: loads the schema in proto/ (at run time, with protobufjs) and
 * decodes / encodes `CoreML.Specification.Model`.
 *
 * Byte-exactness: protobufjs writes known fields in field-number order and packs proto3 repeated
 * scalars, like protoc; decoded objects only own the fields that were on the wire, and map entries
 * keep their wire order (JS objects keep insertion order, except integer-like keys, which Core ML
 * identifiers never are). With the schema in proto/ every fixture model re-encodes to identical
 * bytes (test/format/roundtrip.test.ts).
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import protobuf from 'protobufjs';
import Long from 'long';
import { ModelFormatError } from '../errors.js';
import type { ModelSpec } from './spec-types.js';

// 64-bit integers must stay exact (blob offsets, shapes): make protobufjs use `long`.
protobuf.util.Long = Long;
protobuf.configure();

/** proto/ at the package root; this file lives two levels below it in both src/ and dist/. */
export const PROTO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto');

let modelRoot: protobuf.Root | undefined;
let neuralNetworkRoot: protobuf.Root | undefined;

/** Root holding Model.proto, FeatureTypes.proto and MIL.proto (packages CoreML.Specification[.MILSpec]). */
export function protoRoot(): protobuf.Root {
  if (!modelRoot) {
    const root = new protobuf.Root();
    root.loadSync(path.join(PROTO_DIR, 'Model.proto'), { keepCase: false });
    root.resolveAll();
    modelRoot = root;
  }
  return modelRoot;
}

/** Separate root for the read-only NeuralNetwork.proto subset (never used to write). */
export function neuralNetworkProtoRoot(): protobuf.Root {
  if (!neuralNetworkRoot) {
    const root = new protobuf.Root();
    root.loadSync(path.join(PROTO_DIR, 'NeuralNetwork.proto'), { keepCase: false });
    root.resolveAll();
    neuralNetworkRoot = root;
  }
  return neuralNetworkRoot;
}

/** Look up a message type by full name, e.g. 'CoreML.Specification.MILSpec.Operation'. */
export function specType(fullName: string): protobuf.Type {
  return protoRoot().lookupType(fullName);
}

/** Shorthand for a MIL message type, e.g. milType('Value'). */
export function milType(name: string): protobuf.Type {
  return specType(`CoreML.Specification.MILSpec.${name}`);
}

export function modelType(): protobuf.Type {
  return specType('CoreML.Specification.Model');
}

/**
 * Decode a serialized Model. Truncated or corrupt input throws ModelFormatError naming `file`;
 * any failure inside protobufjs (range errors, bad wire types, depth limit) is converted.
 */
export function decodeModel(bytes: Uint8Array, file?: string): ModelSpec {
  return decodeMessage(modelType(), bytes, file) as unknown as ModelSpec;
}

/** Decode any message of the schema with the same error handling as decodeModel. */
export function decodeMessage(type: protobuf.Type, bytes: Uint8Array, file?: string): protobuf.Message {
  try {
    return type.decode(bytes);
  } catch (err) {
    throw new ModelFormatError(`not a valid ${type.name} protobuf (${describe(err)})`, { file, cause: err });
  }
}

/**
 * Encode a Model (a decoded message or a plain object using the same field names; enums as numbers,
 * bytes as Uint8Array, 64-bit ints as number or Long). The message is checked with protobufjs'
 * verifier first so a malformed spec throws ModelFormatError instead of writing garbage.
 */
export function encodeModel(spec: ModelSpec, file?: string): Uint8Array {
  return encodeMessage(modelType(), spec, file);
}

export function encodeMessage(type: protobuf.Type, message: object, file?: string): Uint8Array {
  const problem = type.verify(message);
  if (problem) throw new ModelFormatError(`cannot encode ${type.name}: ${problem}`, { file });
  try {
    return type.encode(message).finish();
  } catch (err) {
    throw new ModelFormatError(`cannot encode ${type.name}: ${describe(err)}`, { file, cause: err });
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
