/**
 * Read-only inspection of legacy NeuralNetwork weights (shared/spec/coreml-format.md §2.8).
 * The neuralNetwork* members of Model are kept as raw bytes by proto/Model.proto; here they are
 * decoded with the NeuralNetwork.proto subset to list which layer holds which weights.
 */
import Long from 'long';
import { decodeMessage, neuralNetworkProtoRoot } from './proto.js';
import type { Int64, ModelSpec } from './spec-types.js';

export type NeuralNetworkWeightDtype = 'float32' | 'float16' | 'int8' | `quantized ${number}-bit`;

export interface NeuralNetworkWeightInfo {
  /** Where the network sits: '' for the top-level model, 'pipeline.models[1]' inside a pipeline. */
  model: string;
  layer: string;
  layerType: 'convolution' | 'innerProduct' | 'embedding' | 'batchnorm';
  /** Parameter name: weights, bias, gamma, beta, mean, variance. */
  param: string;
  dtype: NeuralNetworkWeightDtype;
  /** Element count, from the layer's declared shape when known, else from the stored data. */
  count: number;
  /** Declared shape of the parameter, when the layer fixes it. */
  shape?: number[];
  /** Bytes of stored weight data (excluding quantization tables). */
  bytes: number;
  /** Quantization scheme for quantized weights. */
  quantization?: 'linear' | 'lookupTable';
}

interface WeightParams {
  floatValue?: number[];
  float16Value?: Uint8Array;
  rawValue?: Uint8Array;
  int8RawValue?: Uint8Array;
  quantization?: { numberOfBits?: Int64; linearQuantization?: object | null; lookupTableQuantization?: object | null } | null;
}

type Layer = Record<string, unknown> & { name?: string };

const NN_MEMBERS = {
  neuralNetwork: 'NeuralNetwork',
  neuralNetworkClassifier: 'NeuralNetworkClassifier',
  neuralNetworkRegressor: 'NeuralNetworkRegressor',
} as const;

/** Every weight-carrying parameter of conv / innerProduct / embedding / batchnorm layers, in layer order. */
export function listNeuralNetworkWeights(spec: ModelSpec, file?: string): NeuralNetworkWeightInfo[] {
  const out: NeuralNetworkWeightInfo[] = [];
  collect(spec, '', out, file);
  return out;
}

function collect(spec: ModelSpec, where: string, out: NeuralNetworkWeightInfo[], file?: string): void {
  const pipeline = spec.pipeline ?? spec.pipelineClassifier?.pipeline ?? spec.pipelineRegressor?.pipeline;
  if (pipeline) {
    const prefix = where ? `${where}.` : '';
    (pipeline.models ?? []).forEach((m, i) => collect(m, `${prefix}pipeline.models[${i}]`, out, file));
    return;
  }
  for (const [member, typeName] of Object.entries(NN_MEMBERS)) {
    const bytes = spec[member];
    if (!(bytes instanceof Uint8Array)) continue;
    const type = neuralNetworkProtoRoot().lookupType(`CoreML.Specification.${typeName}`);
    const net = decodeMessage(type, bytes, file) as unknown as { layers?: Layer[] };
    for (const layer of net.layers ?? []) describeLayer(layer, where, out);
  }
}

function describeLayer(layer: Layer, model: string, out: NeuralNetworkWeightInfo[]): void {
  const name = layer.name ?? '';
  const add = (layerType: NeuralNetworkWeightInfo['layerType'], param: string, w: WeightParams | null | undefined, shape?: number[]) => {
    if (!w) return;
    const info = describeWeights(w, shape);
    if (info) out.push({ model, layer: name, layerType, param, ...info });
  };
  const conv = layer['convolution'] as Record<string, unknown> | undefined;
  if (conv) {
    const outC = num(conv['outputChannels']);
    const kC = num(conv['kernelChannels']);
    const groups = num(conv['nGroups']) || 1;
    const k = ((conv['kernelSize'] as Int64[] | undefined) ?? []).map(num);
    const shape = conv['isDeconvolution'] ? [kC, outC / groups, ...k] : [outC, kC, ...k];
    add('convolution', 'weights', conv['weights'] as WeightParams, shape);
    add('convolution', 'bias', conv['bias'] as WeightParams, [outC]);
    return;
  }
  const ip = layer['innerProduct'] as Record<string, unknown> | undefined;
  if (ip) {
    const outC = num(ip['outputChannels']);
    add('innerProduct', 'weights', ip['weights'] as WeightParams, [outC, num(ip['inputChannels'])]);
    add('innerProduct', 'bias', ip['bias'] as WeightParams, [outC]);
    return;
  }
  const emb = layer['embedding'] as Record<string, unknown> | undefined;
  if (emb) {
    const outC = num(emb['outputChannels']);
    add('embedding', 'weights', emb['weights'] as WeightParams, [outC, num(emb['inputDim'])]);
    add('embedding', 'bias', emb['bias'] as WeightParams, [outC]);
    return;
  }
  const bn = layer['batchnorm'] as Record<string, unknown> | undefined;
  if (bn) {
    const c = num(bn['channels']);
    for (const p of ['gamma', 'beta', 'mean', 'variance']) add('batchnorm', p, bn[p] as WeightParams, [c]);
  }
}

function describeWeights(w: WeightParams, shape?: number[]): Omit<NeuralNetworkWeightInfo, 'model' | 'layer' | 'layerType' | 'param'> | undefined {
  const declared = shape && shape.every((d) => Number.isFinite(d) && d > 0) ? shape : undefined;
  const declaredCount = declared?.reduce((a, b) => a * b, 1);
  const withShape = declared ? { shape: declared } : {};
  if (w.floatValue && w.floatValue.length > 0) {
    return { dtype: 'float32', count: w.floatValue.length, bytes: w.floatValue.length * 4, ...withShape };
  }
  if (w.float16Value && w.float16Value.length > 0) {
    return { dtype: 'float16', count: w.float16Value.length / 2, bytes: w.float16Value.length, ...withShape };
  }
  const quantization = w.quantization?.linearQuantization ? 'linear' : w.quantization?.lookupTableQuantization ? 'lookupTable' : undefined;
  const q = quantization ? { quantization } as const : {};
  if (w.int8RawValue && w.int8RawValue.length > 0) {
    return { dtype: 'int8', count: w.int8RawValue.length, bytes: w.int8RawValue.length, ...withShape, ...q };
  }
  if (w.rawValue && w.rawValue.length > 0) {
    const bits = num(w.quantization?.numberOfBits) || 8;
    const count = declaredCount ?? Math.floor((w.rawValue.length * 8) / bits);
    return { dtype: `quantized ${bits}-bit`, count, bytes: w.rawValue.length, ...withShape, ...q };
  }
  return undefined;
}

function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (Long.isLong(v)) return (v as Long).toNumber();
  return 0;
}
