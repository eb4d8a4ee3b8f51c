/**
 * Everything `coreml-optimize info` reports about a model, as plain JSON-able data, and its
 * aligned-table rendering. Works on ML Programs (per-function opsets, op counts, weights with
 * compression), NeuralNetworks (layer counts and weights) and pipelines (each sub-model).
 */
import type { Model } from '../../model.js';
import { WeightFileError } from '../../errors.js';
import type { ModelSpec, FeatureDescriptionSpec, FeatureTypeSpec, ArrayFeatureTypeSpec, SizeRangeSpec, Int64 } from '../../format/spec-types.js';
import { listNeuralNetworkWeights, type NeuralNetworkWeightInfo } from '../../format/neural-network.js';
import { Program, type BlobSource, type ProgramMsg } from '../../mil/program.js';
import { BlobFile } from '../../format/blob.js';
import { formatValueType } from '../../mil/types.js';
import { sortedOpCounts, totalOps } from '../../mil/walk.js';
import { constantBytes, listWeights, type CompressionInfo, type WeightInfo } from '../../mil/weights.js';
import { scanNeuralNetworkLayers } from './nn-layers.js';
import { formatBytes, formatTable } from '../table.js';

/** Spec version → Core ML version and minimum OS versions (spec §2.4). */
const SPEC_TABLE: Record<number, { coreML: string; iOS: string; macOS: string; tvOS: string; watchOS: string; visionOS?: string }> = {
  1: { coreML: '1', iOS: '11', macOS: '10.13', tvOS: '11', watchOS: '4' },
  2: { coreML: '1.2', iOS: '11.2', macOS: '10.13.2', tvOS: '11.2', watchOS: '4.2' },
  3: { coreML: '2', iOS: '12', macOS: '10.14', tvOS: '12', watchOS: '5' },
  4: { coreML: '3', iOS: '13', macOS: '10.15', tvOS: '13', watchOS: '6' },
  5: { coreML: '4', iOS: '14', macOS: '11', tvOS: '14', watchOS: '7' },
  6: { coreML: '5', iOS: '15', macOS: '12', tvOS: '15', watchOS: '8' },
  7: { coreML: '6', iOS: '16', macOS: '13', tvOS: '16', watchOS: '9' },
  8: { coreML: '7', iOS: '17', macOS: '14', tvOS: '17', watchOS: '10' },
  9: { coreML: '8', iOS: '18', macOS: '15', tvOS: '18', watchOS: '11' },
  10: { coreML: '9', iOS: '26', macOS: '26', tvOS: '26', watchOS: '26', visionOS: '26' },
};

const ARRAY_DTYPES: Record<number, string> = { 65568: 'FLOAT32', 65600: 'DOUBLE', 131104: 'INT32', 131080: 'INT8', 65552: 'FLOAT16' };
const COLOR_SPACES: Record<number, string> = { 10: 'GRAYSCALE', 20: 'RGB', 30: 'BGR', 40: 'GRAYSCALE_FLOAT16' };
const MODEL_TYPES = [
  'pipelineClassifier', 'pipelineRegressor', 'pipeline', 'glmRegressor', 'supportVectorRegressor', 'treeEnsembleRegressor',
  'neuralNetworkRegressor', 'bayesianProbitRegressor', 'glmClassifier', 'supportVectorClassifier', 'treeEnsembleClassifier',
  'neuralNetworkClassifier', 'kNearestNeighborsClassifier', 'neuralNetwork', 'itemSimilarityRecommender', 'mlProgram', 'customModel',
  'linkedModel', 'classConfidenceThresholding', 'oneHotEncoder', 'imputer', 'featureVectorizer', 'dictVectorizer', 'scaler',
  'categoricalMapping', 'normalizer', 'arrayFeatureExtractor', 'nonMaximumSuppression', 'identity', 'textClassifier', 'wordTagger',
  'visionFeaturePrint', 'soundAnalysisPreprocessing', 'gazetteer', 'wordEmbedding', 'audioFeaturePrint', 'serializedModel',
];

export interface FeatureInfo { name: string; type: string; shortDescription?: string; optional?: boolean; detail: Record<string, unknown> }

export interface ProgramFunctionInfo {
  name: string;
  opset: string;
  inputs: { name: string; type: string }[];
  outputs: { name: string; type: string }[];
  opCount: number;
  opCounts: Record<string, number>;
}

export interface ProgramInfo {
  functions: ProgramFunctionInfo[];
  weightsAvailable: boolean;
  missingWeightFiles: string[];
  weights: WeightInfo[];
  totals: { weights: number; compressedWeights: number; weightBytes: number; denseBytes: number; blobBytes: number; blobCount: number; immediateBytes: number };
}

export interface ModelInfoReport {
  file?: string;
  format?: string;
  specificationVersion: number;
  coreMLVersion?: string;
  minimumDeploymentTarget?: Record<string, string>;
  modelType: string;
  isUpdatable: boolean;
  inputs: FeatureInfo[];
  outputs: FeatureInfo[];
  states: FeatureInfo[];
  /** Multi-function models (spec ≥ 9): each function's own description. */
  functionDescriptions?: { name: string; inputs: FeatureInfo[]; outputs: FeatureInfo[]; states: FeatureInfo[] }[];
  defaultFunctionName?: string;
  predictedFeatureName?: string;
  predictedProbabilitiesName?: string;
  metadata: { author?: string; license?: string; shortDescription?: string; versionString?: string; userDefined: Record<string, string> };
  program?: ProgramInfo;
  neuralNetwork?: { layerCount: number; layerTypes: Record<string, number>; weights: NeuralNetworkWeightInfo[] };
  pipeline?: { name: string; model: ModelInfoReport }[];
  notes: string[];
}

const n = (v: Int64 | undefined | null): number => (v === undefined || v === null ? 0 : typeof v === 'number' ? v : v.toNumber());
const shapeOf = (s: Int64[] | null | undefined) => (s ?? []).map(n);
const range = (r: SizeRangeSpec | null | undefined) => ({ lower: n(r?.lowerBound), upper: n(r?.upperBound) });
const rangeText = (r: { lower: number; upper: number }) => (r.lower === r.upper ? `${r.lower}` : `${r.lower}..${r.upper < 0 ? '∞' : r.upper}`);

function arrayInfo(a: ArrayFeatureTypeSpec): { text: string; detail: Record<string, unknown> } {
  const dataType = ARRAY_DTYPES[a.dataType ?? 0] ?? `dataType ${a.dataType ?? 0}`;
  const shape = shapeOf(a.shape);
  const detail: Record<string, unknown> = { kind: 'multiArray', dataType, shape };
  let text = `MultiArray ${dataType} [${shape.join(', ')}]`;
  if (a.enumeratedShapes) {
    const shapes = (a.enumeratedShapes.shapes ?? []).map(s => shapeOf(s.shape));
    detail['enumeratedShapes'] = shapes;
    text += ` enumerated {${shapes.map(s => `[${s.join(', ')}]`).join(', ')}}`;
  } else if (a.shapeRange) {
    const ranges = (a.shapeRange.sizeRanges ?? []).map(range);
    detail['shapeRanges'] = ranges;
    text += ` range [${ranges.map(rangeText).join(', ')}]`;
  }
  return { text, detail };
}

export function describeFeatureType(t: FeatureTypeSpec | null | undefined): { text: string; detail: Record<string, unknown> } {
  if (!t) return { text: 'unknown', detail: { kind: 'unknown' } };
  if (t.multiArrayType) return arrayInfo(t.multiArrayType);
  if (t.imageType) {
    const im = t.imageType;
    const colorSpace = COLOR_SPACES[im.colorSpace ?? 0] ?? `colorSpace ${im.colorSpace ?? 0}`;
    const detail: Record<string, unknown> = { kind: 'image', colorSpace, width: n(im.width), height: n(im.height) };
    let text = `Image ${colorSpace} ${n(im.width)}x${n(im.height)}`;
    if (im.enumeratedSizes) {
      const sizes = (im.enumeratedSizes.sizes ?? []).map(s => ({ width: n(s.width), height: n(s.height) }));
      detail['enumeratedSizes'] = sizes;
      text += ` enumerated {${sizes.map(s => `${s.width}x${s.height}`).join(', ')}}`;
    } else if (im.imageSizeRange) {
      const w = range(im.imageSizeRange.widthRange);
      const h = range(im.imageSizeRange.heightRange);
      detail['sizeRange'] = { width: w, height: h };
      text += ` range ${rangeText(w)}x${rangeText(h)}`;
    }
    return { text, detail };
  }
  if (t.int64Type) return { text: 'Int64', detail: { kind: 'int64' } };
  if (t.doubleType) return { text: 'Double', detail: { kind: 'double' } };
  if (t.stringType) return { text: 'String', detail: { kind: 'string' } };
  if (t.dictionaryType) {
    const key = t.dictionaryType.stringKeyType ? 'String' : 'Int64';
    return { text: `Dictionary<${key}, Double>`, detail: { kind: 'dictionary', keyType: key.toLowerCase() } };
  }
  if (t.sequenceType) {
    const el = t.sequenceType.stringType ? 'String' : 'Int64';
    return { text: `Sequence<${el}>`, detail: { kind: 'sequence', elementType: el.toLowerCase(), sizeRange: range(t.sequenceType.sizeRange) } };
  }
  if (t.stateType?.arrayType) {
    const a = arrayInfo(t.stateType.arrayType);
    return { text: `State<${a.text}>`, detail: { kind: 'state', array: a.detail } };
  }
  return { text: 'unknown', detail: { kind: 'unknown' } };
}

function features(list: FeatureDescriptionSpec[] | null | undefined): FeatureInfo[] {
  return (list ?? []).map(f => {
    const t = describeFeatureType(f.type);
    return { name: f.name ?? '', type: t.text, ...(f.shortDescription ? { shortDescription: f.shortDescription } : {}), ...(f.type?.isOptional ? { optional: true } : {}), detail: t.detail };
  });
}

export function modelTypeName(spec: ModelSpec): string {
  return MODEL_TYPES.find(k => Object.prototype.hasOwnProperty.call(spec, k) && spec[k] != null) ?? 'unknown';
}

export interface DescribeOptions {
  file?: string;
  format?: string;
  /** Resolves BlobFileValue file names to paths; absent or throwing = weights unavailable. */
  weightFilePath?: (fileName: string) => string;
  missingWeightFiles?: readonly string[];
  /** Open a weight file (default: the memory-mapped BlobFile). */
  openBlob?: (path: string) => BlobSource & { close?(): void };
}

/** Build the report. Weight files are opened only to read small facts (mask popcounts, offsets, LUT copies). */
export function describeModel(spec: ModelSpec, options: DescribeOptions = {}): ModelInfoReport {
  const v = spec.specificationVersion ?? 0;
  const os = SPEC_TABLE[v];
  const d = spec.description ?? {};
  const md = d.metadata ?? {};
  const modelType = modelTypeName(spec);
  const report: ModelInfoReport = {
    ...(options.file ? { file: options.file } : {}),
    ...(options.format ? { format: options.format } : {}),
    specificationVersion: v,
    ...(os ? { coreMLVersion: os.coreML, minimumDeploymentTarget: Object.fromEntries(Object.entries(os).filter(([k]) => k !== 'coreML')) } : {}),
    modelType,
    isUpdatable: Boolean(spec.isUpdatable),
    inputs: features(d.input),
    outputs: features(d.output),
    states: features(d.state),
    ...(d.functions?.length ? { functionDescriptions: d.functions.map(f => ({ name: f.name ?? '', inputs: features(f.input), outputs: features(f.output), states: features(f.state) })) } : {}),
    ...(d.defaultFunctionName ? { defaultFunctionName: d.defaultFunctionName } : {}),
    ...(d.predictedFeatureName ? { predictedFeatureName: d.predictedFeatureName } : {}),
    ...(d.predictedProbabilitiesName ? { predictedProbabilitiesName: d.predictedProbabilitiesName } : {}),
    metadata: {
      ...(md.author ? { author: md.author } : {}),
      ...(md.license ? { license: md.license } : {}),
      ...(md.shortDescription ? { shortDescription: md.shortDescription } : {}),
      ...(md.versionString ? { versionString: md.versionString } : {}),
      userDefined: Object.fromEntries(Object.entries(md.userDefined ?? {}).sort(([a], [b]) => a.localeCompare(b))),
    },
    notes: [],
  };
  if (!os) report.notes.push(`specification version ${v} is not known to this tool`);

  if (spec.mlProgram) report.program = describeProgram(spec.mlProgram as unknown as ProgramMsg, options, report.notes);

  for (const member of ['neuralNetwork', 'neuralNetworkClassifier', 'neuralNetworkRegressor'] as const) {
    const bytes = spec[member];
    if (!(bytes instanceof Uint8Array)) continue;
    const layers = scanNeuralNetworkLayers(bytes, options.file);
    const layerTypes: Record<string, number> = {};
    for (const l of layers) layerTypes[l.type] = (layerTypes[l.type] ?? 0) + 1;
    let weights: NeuralNetworkWeightInfo[] = [];
    try { weights = listNeuralNetworkWeights(spec, options.file); } catch (e) { report.notes.push(`neural network weights not listed: ${(e as Error).message}`); }
    report.neuralNetwork = { layerCount: layers.length, layerTypes: sortCounts(layerTypes), weights };
  }

  const pipeline = spec.pipeline ?? spec.pipelineClassifier?.pipeline ?? spec.pipelineRegressor?.pipeline;
  if (pipeline) {
    report.pipeline = (pipeline.models ?? []).map((m, i) => ({ name: pipeline.names?.[i] ?? `model ${i}`, model: describeModel(m, { ...options, file: undefined, format: undefined }) }));
  }
  return report;
}

function sortCounts(c: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(c).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

function describeProgram(msg: ProgramMsg, options: DescribeOptions, notes: string[]): ProgramInfo {
  const missing = [...(options.missingWeightFiles ?? [])];
  const readers = new Map<string, BlobSource & { close?(): void }>();
  const open = options.openBlob ?? ((p: string) => BlobFile.open(p));
  const weightsAvailable = Boolean(options.weightFilePath) && missing.length === 0;
  const program = new Program(msg, {
    file: options.file,
    blobs: fileName => {
      const p = options.weightFilePath!(fileName);
      let r = readers.get(p);
      if (!r) readers.set(p, (r = open(p)));
      return r;
    },
  });
  try {
    const functions: ProgramFunctionInfo[] = [...program.functions.values()].map(fn => ({
      name: fn.name,
      opset: fn.opset,
      inputs: fn.inputs.map(i => ({ name: i.name, type: formatValueType(i.type) })),
      outputs: fn.outputs.map(o => ({ name: o.name, type: formatValueType(o.type) })),
      opCount: totalOps(program, fn.name),
      opCounts: Object.fromEntries(sortedOpCounts(program, fn.name)),
    }));
    if (!weightsAvailable) notes.push(missing.length ? `weight file(s) missing: ${missing.join(', ')}; weights are described from the program only` : 'weights are described from the program only');
    let weights: WeightInfo[];
    try {
      weights = listWeights(program, { readData: weightsAvailable });
    } catch (e) {
      // A damaged weight file must not hide what the program itself says.
      if (!(e instanceof WeightFileError)) throw e;
      notes.push(`weight data could not be read (${e.message}); facts that need it are left out`);
      weights = listWeights(program, { readData: false });
    }
    const c = constantBytes(program);
    return {
      functions,
      weightsAvailable,
      missingWeightFiles: missing,
      weights,
      totals: {
        weights: weights.length,
        compressedWeights: weights.filter(w => w.chain[0] !== 'const').length,
        weightBytes: weights.reduce((a, w) => a + w.bytes, 0),
        denseBytes: weights.reduce((a, w) => a + w.denseBytes, 0),
        ...c,
      },
    };
  } finally {
    for (const r of readers.values()) r.close?.();
  }
}

/** Report for a loaded Model (format layer). */
export function describeLoadedModel(model: Model): ModelInfoReport {
  return describeModel(model.spec, {
    file: model.path,
    format: model.format,
    weightFilePath: model.weightsDir || model.weightFileNames.length ? f => model.weightFilePath(f) : undefined,
    missingWeightFiles: model.missingWeightFiles,
  });
}

/* ---- text rendering ---- */

export function compressionSummary(c: CompressionInfo): string {
  switch (c.kind) {
    case 'palettization': {
      const parts = [`palettize ${c.nbits}-bit`, c.granularity === 'per_grouped_channel' ? `per_grouped_channel axis ${c.groupAxis} group_size ${c.groupSize}` : 'per_tensor'];
      if (c.clusterDim > 1) parts.push(`cluster_dim ${c.clusterDim}`);
      parts.push(`lut ${c.lutDtype}${c.lutSource === 'quantized' ? ' (quantized)' : ''}`);
      if (c.target === 'nonzero_data') parts.push('of non-zeros');
      return parts.join(' ');
    }
    case 'quantization': {
      const g = c.granularity === 'per_channel' ? `per_channel axis ${c.axis}` : c.granularity === 'per_block' ? `per_block ${c.blockSize ?? c.blockSizes?.join('x')}` : 'per_tensor';
      const sym = c.symmetric === undefined ? '' : c.symmetric ? ' symmetric' : ' with zero point';
      const tgt = c.target === 'lut' ? ' (LUT)' : c.target === 'nonzero_data' ? ' of non-zeros' : '';
      return `quantize ${c.dtype} ${g}${sym}${tgt}`;
    }
    case 'sparsity': return `sparse ${(c.sparsity * 100).toFixed(1)}%`;
    case 'per_channel_scale': return `per-channel scale [${c.scaleShape.join(', ')}]`;
    case 'cast': return `cast ${c.from} → ${c.to}`;
  }
}

const shapeText = (s: (number | null)[]) => `[${s.map(d => (d === null ? '?' : d)).join(', ')}]`;

export function formatReport(r: ModelInfoReport, indent = ''): string {
  const out: string[] = [];
  const kv: [string, string][] = [];
  if (r.file) kv.push(['File', r.file]);
  if (r.format) kv.push(['Format', r.format]);
  const os = r.minimumDeploymentTarget;
  kv.push(['Spec version', `${r.specificationVersion}${r.coreMLVersion ? ` (Core ML ${r.coreMLVersion}; ${Object.entries(os ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`]);
  kv.push(['Model type', r.modelType + (r.isUpdatable ? ' (updatable)' : '')]);
  if (r.program) kv.push(['Opset', r.program.functions.map(f => (r.program!.functions.length > 1 ? `${f.name}: ${f.opset}` : f.opset)).join(', ')]);
  if (r.predictedFeatureName) kv.push(['Predicted', r.predictedFeatureName + (r.predictedProbabilitiesName ? ` (probabilities: ${r.predictedProbabilitiesName})` : '')]);
  for (const [k, v] of Object.entries({ Author: r.metadata.author, License: r.metadata.license, Description: r.metadata.shortDescription, Version: r.metadata.versionString })) if (v) kv.push([k, v]);
  for (const [k, v] of Object.entries(r.metadata.userDefined)) kv.push([k, v]);
  const w = Math.max(...kv.map(([k]) => k.length));
  for (const [k, v] of kv) out.push(`${k.padEnd(w)}  ${v}`);

  const featureTable = (title: string, list: FeatureInfo[]) => {
    if (!list.length) return;
    out.push('', title, formatTable(['name', 'type'], list.map(f => [f.name + (f.optional ? ' (optional)' : ''), f.type])));
  };
  featureTable('Inputs', r.inputs);
  featureTable('Outputs', r.outputs);
  featureTable('States', r.states);
  for (const f of r.functionDescriptions ?? []) {
    const tag = f.name === r.defaultFunctionName ? ' (default)' : '';
    featureTable(`Function ${f.name}${tag} inputs`, f.inputs);
    featureTable(`Function ${f.name}${tag} outputs`, f.outputs);
    featureTable(`Function ${f.name}${tag} states`, f.states);
  }

  if (r.program) {
    const p = r.program;
    for (const f of p.functions) {
      out.push('', `Function ${f.name} (opset ${f.opset}, ${f.opCount} ops)`);
      out.push(formatTable(['op type', 'count'], Object.entries(f.opCounts)));
    }
    const t = p.totals;
    out.push('', `Weights: ${t.weights} (${t.compressedWeights} compressed), ${formatBytes(t.weightBytes)} stored, ${formatBytes(t.denseBytes)} uncompressed; blob data ${formatBytes(t.blobBytes)} in ${t.blobCount} blobs${p.weightsAvailable ? '' : ' (weight file not available)'}`);
    if (p.weights.length) {
      out.push(formatTable(['weight', 'dtype', 'shape', 'bytes', 'storage', 'compression', 'used by'],
        p.weights.map(x => [x.name, x.dtype, shapeText(x.shape), x.bytes, x.chain[0] === 'const' ? x.storage : x.chain.join('+'), x.compression.map(compressionSummary).join('; ') || '-', x.consumers.join(', ')])));
    }
  }
  if (r.neuralNetwork) {
    const nn = r.neuralNetwork;
    out.push('', `Layers: ${nn.layerCount}`, formatTable(['layer type', 'count'], Object.entries(nn.layerTypes)));
    if (nn.weights.length) {
      out.push('', 'Weights', formatTable(['layer', 'param', 'dtype', 'shape', 'count', 'bytes'], nn.weights.map(x => [x.layer, x.param, x.dtype, x.shape ? shapeText(x.shape) : '', x.count, x.bytes])));
    }
  }
  for (const sub of r.pipeline ?? []) {
    out.push('', `Pipeline model "${sub.name}"`, formatReport(sub.model, '  '));
  }
  for (const note of r.notes) out.push('', `Note: ${note}`);
  return out.map(l => l.split('\n').map(x => (x ? indent + x : x)).join('\n')).join('\n');
}

