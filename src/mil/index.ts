/**
 * `coreml-optimize/mil` (advanced): the ML Program graph — decode, walk, edit, build programs with
 * ProgramBuilder, list weights and their compression.
 */
export { Program, MilFunction, Block, Operation, ConstValue, makeConstOp, makeOp, makeConstexprOp, isConstexprType } from './program.js';
export type { ProgramMsg, FunctionMsg, BlockMsg, OperationMsg, ArgumentMsg, BindingMsg, NamedValueTypeMsg, Binding, Param, BlobSource, BlobResolver, ProgramOptions } from './program.js';
export { decodeProgram, encodeProgram, scanModelBytes } from './proto.js';
export {
  DataType, dtypeFromCode, dtypeCode, dtypeBits, blobDTypeOf, dtypeFromBlob, isSubByte, tensorType, tensorDType, tensorShape, tensorRank,
  elementCountOf, formatValueType, OPSET_OF_SPEC, iosOfOpset,
} from './types.js';
export type { MilDType, Dim, ValueTypeMsg } from './types.js';
export { encodeImmediateTensor, decodeImmediateTensor, packBits, unpackBits, floatToHalfBits, halfBitsToFloat, halfBitsToFloatArray, stringScalar } from './values.js';
export type { TensorData, ValueMsg } from './values.js';
export { walkProgram, sortedOpCounts, totalOps } from './walk.js';
export { listWeights, constantBytes, popcount, weightValueStats } from './weights.js';
export type { WeightInfo, WeightInputInfo, CompressionInfo, PalettizationInfo, QuantizationInfo, SparsityInfo, PerChannelScaleInfo, CastInfo, ListWeightsOptions } from './weights.js';
export { ProgramBuilder, tensor, inferOutputs, weightsDirResolver } from './builder.js';
export type { ProgramBuilderOptions, Var, TensorLiteral, OpInput, OpOptions, WeightSink, BuiltSpec } from './builder.js';
export { openProgram } from './from-model.js';
export type { OpenedProgram } from './from-model.js';
