/**
 * TypeScript view of the decoded Core ML protobuf messages, as protobufjs produces them from
 * proto/*.proto (camelCase field names). Decoded objects are protobufjs message instances: a field
 * is an own property only when it was present on the wire, defaults live on the prototype.
 * 64-bit integers (int64/uint64) decode to `Long` objects; numbers are accepted when encoding.
 * Only the members this project reads are typed precisely; the rest is open.
 */
import type Long from 'long';

export type Int64 = number | Long;

/** `CoreML.Specification.Model`. Exactly one of the model-type members is set. */
export interface ModelSpec {
  specificationVersion?: number;
  description?: ModelDescriptionSpec | null;
  isUpdatable?: boolean;
  pipelineClassifier?: { pipeline?: PipelineSpec | null } | null;
  pipelineRegressor?: { pipeline?: PipelineSpec | null } | null;
  pipeline?: PipelineSpec | null;
  mlProgram?: MilProgram | null;
  /** Opaque model types are raw serialized sub-messages (see proto/Model.proto). */
  neuralNetwork?: Uint8Array | null;
  neuralNetworkClassifier?: Uint8Array | null;
  neuralNetworkRegressor?: Uint8Array | null;
  [field: string]: unknown;
}

export interface PipelineSpec {
  models?: ModelSpec[];
  names?: string[];
}

export interface ModelDescriptionSpec {
  input?: FeatureDescriptionSpec[];
  output?: FeatureDescriptionSpec[];
  predictedFeatureName?: string;
  predictedProbabilitiesName?: string;
  state?: FeatureDescriptionSpec[];
  functions?: FunctionDescriptionSpec[];
  defaultFunctionName?: string;
  trainingInput?: FeatureDescriptionSpec[];
  metadata?: MetadataSpec | null;
}

export interface FunctionDescriptionSpec {
  name?: string;
  input?: FeatureDescriptionSpec[];
  output?: FeatureDescriptionSpec[];
  predictedFeatureName?: string;
  predictedProbabilitiesName?: string;
  state?: FeatureDescriptionSpec[];
}

export interface MetadataSpec {
  shortDescription?: string;
  versionString?: string;
  author?: string;
  license?: string;
  userDefined?: Record<string, string>;
}

export interface FeatureDescriptionSpec {
  name?: string;
  shortDescription?: string;
  type?: FeatureTypeSpec | null;
}

export interface SizeRangeSpec {
  lowerBound?: Int64;
  upperBound?: Int64;
}

export interface ArrayFeatureTypeSpec {
  shape?: Int64[];
  /** ArrayDataType enum value, e.g. 65568 = FLOAT32. */
  dataType?: number;
  enumeratedShapes?: { shapes?: { shape?: Int64[] }[] } | null;
  shapeRange?: { sizeRanges?: SizeRangeSpec[] } | null;
  intDefaultValue?: number;
  floatDefaultValue?: number;
  doubleDefaultValue?: number;
}

export interface ImageFeatureTypeSpec {
  width?: Int64;
  height?: Int64;
  /** ColorSpace enum value (10 GRAYSCALE, 20 RGB, 30 BGR, 40 GRAYSCALE_FLOAT16). */
  colorSpace?: number;
  enumeratedSizes?: { sizes?: { width?: Int64; height?: Int64 }[] } | null;
  imageSizeRange?: { widthRange?: SizeRangeSpec | null; heightRange?: SizeRangeSpec | null } | null;
}

export interface FeatureTypeSpec {
  int64Type?: object | null;
  doubleType?: object | null;
  stringType?: object | null;
  imageType?: ImageFeatureTypeSpec | null;
  multiArrayType?: ArrayFeatureTypeSpec | null;
  dictionaryType?: { int64KeyType?: object | null; stringKeyType?: object | null } | null;
  sequenceType?: { int64Type?: object | null; stringType?: object | null; sizeRange?: SizeRangeSpec | null } | null;
  stateType?: { arrayType?: ArrayFeatureTypeSpec | null } | null;
  isOptional?: boolean;
}

// ---- MIL (CoreML.Specification.MILSpec), proto/MIL.proto ----

export interface MilProgram {
  version?: Int64;
  functions?: Record<string, MilFunction>;
  docString?: string;
  attributes?: Record<string, MilValue>;
}

export interface MilFunction {
  inputs?: MilNamedValueType[];
  opset?: string;
  blockSpecializations?: Record<string, MilBlock>;
  attributes?: Record<string, MilValue>;
}

export interface MilBlock {
  inputs?: MilNamedValueType[];
  outputs?: string[];
  operations?: MilOperation[];
  attributes?: Record<string, MilValue>;
}

export interface MilOperation {
  type?: string;
  inputs?: Record<string, { arguments?: MilBinding[] }>;
  outputs?: MilNamedValueType[];
  blocks?: MilBlock[];
  attributes?: Record<string, MilValue>;
}

export interface MilBinding {
  name?: string;
  value?: MilValue | null;
}

export interface MilNamedValueType {
  name?: string;
  type?: MilValueType | null;
}

export interface MilValueType {
  tensorType?: MilTensorType | null;
  listType?: { type?: MilValueType | null; length?: MilDimension | null } | null;
  tupleType?: { types?: MilValueType[] } | null;
  dictionaryType?: { keyType?: MilValueType | null; valueType?: MilValueType | null } | null;
  stateType?: { wrappedType?: MilValueType | null } | null;
}

export interface MilTensorType {
  /** MILSpec.DataType enum value (e.g. 10 FLOAT16, 11 FLOAT32). */
  dataType?: number;
  rank?: Int64;
  dimensions?: MilDimension[];
  attributes?: Record<string, MilValue>;
}

export interface MilDimension {
  constant?: { size?: Int64 } | null;
  unknown?: { variadic?: boolean } | null;
}

export interface MilValue {
  docString?: string;
  type?: MilValueType | null;
  immediateValue?: MilImmediateValue | null;
  blobFileValue?: { fileName?: string; offset?: Int64 } | null;
}

export interface MilImmediateValue {
  tensor?: MilTensorValue | null;
  tuple?: { values?: MilValue[] } | null;
  list?: { values?: MilValue[] } | null;
  dictionary?: { values?: { key?: MilValue | null; value?: MilValue | null }[] } | null;
}

export interface MilTensorValue {
  floats?: { values?: number[] } | null;
  ints?: { values?: number[] } | null;
  bools?: { values?: boolean[] } | null;
  strings?: { values?: string[] } | null;
  longInts?: { values?: Int64[] } | null;
  doubles?: { values?: number[] } | null;
  bytes?: { values?: Uint8Array } | null;
}
