/**
 * `coreml-optimize/format` (advanced): the Core ML file format layer — protobuf codec, Manifest.json,
 * package read/write, the MIL blob weight file. Most users need only `loadModel` and `Model.save`.
 */
export { decodeModel, encodeModel, protoRoot, specType, milType } from './proto.js';
export {
  parseManifest,
  serializeManifest,
  validateManifest,
  createManifest,
  newItemIdentifier,
  findWeightsItem,
  withNewIdentifiers,
} from './manifest.js';
export type { Manifest, ManifestItem } from './manifest.js';
export { readModelFiles, writePackage, writeModelFile, resolveWeightFile } from './package.js';
export type { PackageContents, WeightFileSource, WritePackageOptions, ModelFileFormat } from './package.js';
export { listNeuralNetworkWeights } from './neural-network.js';
export type { NeuralNetworkWeightInfo } from './neural-network.js';
export { referencedBlobFileNames } from './blob-references.js';
export type * from './spec-types.js';
export {
  BlobFile, BlobWriter, BLOB_DTYPES, isBlobDType, isSubByteDType, blobDTypeBits, blobDTypeCode, blobPackedSize,
  blobDTypeFromMilDataType, milDataTypeFromBlobDType, packSubByte, unpackSubByte, copyRecords,
} from './blob.js';
export type { BlobDType, SubByteDType, BlobRecord, BlobTypedArray, BlobValues, CopyRecordsOptions } from './blob.js';
