/**
 * TypeScript view of the decoded Core ML protobuf messages, as protobufjs produces them from
 * proto/*.proto (camelCase field names). Decoded objects are protobufjs message instances: a field
 * is an own property only when it was present on the wire, defaults live on the prototype.
 * 64-bit integers (int64/uint64) decode to `Long` objects; numbers are accepted when encoding.
 * Only the members this project reads are typed precisely; the rest is open. Optional members also
 * admit null (the convention of protobufjs' generated typings, used by src/mil).
 */
/** A 64-bit integer as protobufjs decodes it (a `long` Long); any Long-like object is accepted. */
export interface LongLike {
  low: number;
  high: number;
  unsigned: boolean;
  toNumber(): number;
}

export type Int64 = number | LongLike;

/** `CoreML.Specification.Model`. Exactly one of the model-type members is set. */
export interface ModelSpec {
  specificationVersion?: number | null;
  description?: ModelDescriptionSpec | null;
  isUpdatable?: boolean | null;
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
  models?: ModelSpec[] | null;
  names?: string[] | null;
}

export interface ModelDescriptionSpec {
  input?: FeatureDescriptionSpec[] | null;
  output?: FeatureDescriptionSpec[] | null;
  predictedFeatureName?: string | null;
  predictedProbabilitiesName?: string | null;
  state?: FeatureDescriptionSpec[] | null;
  functions?: FunctionDescriptionSpec[] | null;
  defaultFunctionName?: string | null;
  trainingInput?: FeatureDescriptionSpec[] | null;
  metadata?: MetadataSpec | null;
}

export interface FunctionDescriptionSpec {
  name?: string | null;
  input?: FeatureDescriptionSpec[] | null;
  output?: FeatureDescriptionSpec[] | null;
  predictedFeatureName?: string | null;
  predictedProbabilitiesName?: string | null;
  state?: FeatureDescriptionSpec[] | null;
}

export interface MetadataSpec {
  shortDescription?: string | null;
  versionString?: string | null;
  author?: string | null;
  license?: string | null;
  userDefined?: Record<string, string> | null;
}

export interface FeatureDescriptionSpec {
  name?: string | null;
  shortDescription?: string | null;
  type?: FeatureTypeSpec | null;
}

export interface SizeRangeSpec {
  lowerBound?: Int64 | null;
  upperBound?: Int64 | null;
}

export interface ArrayFeatureTypeSpec {
  shape?: Int64[] | null;
  /** ArrayDataType enum value, e.g. 65568 = FLOAT32. */
  dataType?: number | null;
  enumeratedShapes?: { shapes?: { shape?: Int64[] | null }[] | null } | null;
  shapeRange?: { sizeRanges?: SizeRangeSpec[] | null } | null;
  intDefaultValue?: number | null;
  floatDefaultValue?: number | null;
  doubleDefaultValue?: number | null;
}

export interface ImageFeatureTypeSpec {
  width?: Int64 | null;
  height?: Int64 | null;
  /** ColorSpace enum value (10 GRAYSCALE, 20 RGB, 30 BGR, 40 GRAYSCALE_FLOAT16). */
  colorSpace?: number | null;
  enumeratedSizes?: { sizes?: { width?: Int64 | null; height?: Int64 | null }[] | null } | null;
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
  isOptional?: boolean | null;
}

// ---- MIL (CoreML.Specification.MILSpec), proto/MIL.proto ----

export interface MilProgram {
  version?: Int64 | null;
  functions?: Record<string, MilFunction> | null;
  docString?: string | null;
  attributes?: Record<string, MilValue> | null;
}

export interface MilFunction {
  inputs?: MilNamedValueType[] | null;
  opset?: string | null;
  blockSpecializations?: Record<string, MilBlock> | null;
  attributes?: Record<string, MilValue> | null;
}

export interface MilBlock {
  inputs?: MilNamedValueType[] | null;
  outputs?: string[] | null;
  operations?: MilOperation[] | null;
  attributes?: Record<string, MilValue> | null;
}

export interface MilOperation {
  type?: string | null;
  inputs?: Record<string, { arguments?: MilBinding[] | null }> | null;
  outputs?: MilNamedValueType[] | null;
  blocks?: MilBlock[] | null;
  attributes?: Record<string, MilValue> | null;
}

export interface MilBinding {
  name?: string | null;
  value?: MilValue | null;
}

export interface MilNamedValueType {
  name?: string | null;
  type?: MilValueType | null;
}

export interface MilValueType {
  tensorType?: MilTensorType | null;
  listType?: { type?: MilValueType | null; length?: MilDimension | null } | null;
  tupleType?: { types?: MilValueType[] | null } | null;
  dictionaryType?: { keyType?: MilValueType | null; valueType?: MilValueType | null } | null;
  stateType?: { wrappedType?: MilValueType | null } | null;
}

export interface MilTensorType {
  /** MILSpec.DataType enum value (e.g. 10 FLOAT16, 11 FLOAT32). */
  dataType?: number | null;
  rank?: Int64 | null;
  dimensions?: MilDimension[] | null;
  /** Must be empty for coremltools' reader; kept open. */
  attributes?: Record<string, unknown> | null;
}

export interface MilDimension {
  constant?: { size?: Int64 | null } | null;
  unknown?: { variadic?: boolean | null } | null;
}

export interface MilValue {
  docString?: string | null;
  type?: MilValueType | null;
  immediateValue?: MilImmediateValue | null;
  blobFileValue?: { fileName?: string | null; offset?: Int64 | null } | null;
}

export interface MilImmediateValue {
  tensor?: MilTensorValue | null;
  tuple?: { values?: MilValue[] | null } | null;
  list?: { values?: MilValue[] | null } | null;
  dictionary?: { values?: { key?: MilValue | null; value?: MilValue | null }[] | null } | null;
}

export interface MilTensorValue {
  floats?: { values?: number[] | null } | null;
  ints?: { values?: number[] | null } | null;
  bools?: { values?: boolean[] | null } | null;
  strings?: { values?: string[] | null } | null;
  longInts?: { values?: Int64[] | null } | null;
  doubles?: { values?: number[] | null } | null;
  bytes?: { values?: Uint8Array | null } | null;
}
