/**
 * Writing the compressed layers into the model: one streaming pass over the original weight.bin
 * (the shared pass driver), in which each compressed weight's record is replaced by the records
 * compressLayers wrote to its temporary file ("layerwise_copy" entries) and its const op by
 *   sparse: constexpr_sparse_to_dense (iOS16 packed uint8 mask + shape, iOS18 uint1 mask) — the ops
 *           pruneWeights writes; with quantized survivors in iOS18, constexpr_sparse_blockwise_shift_scale
 *           (mask, codes, scale, offset) feeding it — the joint prune → quantize form;
 *   gptq:   constexpr_affine_dequantize (iOS16) / constexpr_blockwise_shift_scale (iOS18) — the ops
 *           linearQuantizeWeights writes.
 * The same records feed the sub-programs of the sequential driver (compressedOps), so the model's
 * later layers were calibrated on exactly the weights that end up in the file.
 */
import type { Model } from '../../model.js';
import { makeConstexprOp } from '../../mil/program.js';
import { tensorType, type MilDType } from '../../mil/types.js';
import { encodeImmediateTensor } from '../../mil/values.js';
import { OptimizationConfig } from '../config.js';
import { runPass, type CompressedModel, type PassContext, type PassHandler, type PassOptions } from '../pass.js';
import type { WeightCandidate } from '../select.js';
import type { CompressResult } from '../native-compress.js';
import { outputValue, uint32Vector } from '../values.js';
import type { GraphOp, GraphValue } from '../../runtime/executor.js';
import type { LayerCompressReport } from '../../kernels/calibrate.js';
import type { LayerOp } from './graph.js';

/** A compressed layer: where its records are and what they hold. */
export interface CompressedLayer {
  layer: LayerOp;
  method: 'sparsegpt' | 'gptq';
  ios16: boolean;
  /** SparseGPT's survivors written as codes (records: mask, codes, scale, offset; iOS18). */
  sparseCodes?: boolean;
  file: string;
  report: LayerCompressReport;
  /** One-line description for the report. */
  detail: string;
}

const blobValue = (file: string, offset: number, dtype: string, shape: number[]): GraphValue => ({ dtype, shape, blob: { file, offset } });

/** The ops defining the layer's weight var from its compressed records (for the executor's sub-programs). */
export function compressedOps(c: CompressedLayer): GraphOp[] {
  const { layer, report, file } = c;
  const out = [{ name: layer.weightName, type: { dtype: layer.dtype, shape: layer.shape } }];
  const v = (k: number, dtype: string, shape: number[]) => [{ value: blobValue(file, report.offsets[k]!, dtype, shape) }];
  if (c.method === 'sparsegpt' && c.sparseCodes) {
    const qd = report.dataDtype!;
    const ss = report.scaleShape!;
    const q = `${layer.weightName}_sparsified_nonzero_data_0_quantized`;
    return [
      {
        type: 'constexpr_sparse_blockwise_shift_scale', name: q, attributes: {}, blocks: [],
        inputs: { data_mask: v(0, 'uint1', layer.shape), nonzero_data: v(1, qd, [report.counts[1]!]), scale: v(2, layer.dtype, ss), offset: v(3, qd, ss) },
        outputs: [{ name: `${q}_0`, type: { dtype: 'uint1', shape: layer.shape } }, { name: `${q}_1`, type: { dtype: layer.dtype, shape: [report.counts[1]!] } }],
      },
      {
        type: 'constexpr_sparse_to_dense', name: layer.weightName, attributes: {}, outputs: out, blocks: [],
        inputs: { nonzero_data: [{ name: `${q}_1` }], mask: v(0, 'uint1', layer.shape) },
      },
    ];
  }
  if (c.method === 'sparsegpt') {
    const inputs: GraphOp['inputs'] = c.ios16
      ? {
          nonzero_data: v(0, layer.dtype, [report.counts[0]!]),
          mask: v(1, 'uint8', [report.counts[1]!]),
          shape: [{ value: { dtype: 'uint32', shape: [layer.shape.length], ints: Int32Array.from(layer.shape) } }],
        }
      : { nonzero_data: v(0, layer.dtype, [report.counts[0]!]), mask: v(1, 'uint1', layer.shape) };
    return [{ type: 'constexpr_sparse_to_dense', name: layer.weightName, inputs, attributes: {}, outputs: out, blocks: [] }];
  }
  if (c.ios16) {
    const n = report.counts[1]!;
    return [{
      type: 'constexpr_affine_dequantize', name: layer.weightName, attributes: {}, outputs: out, blocks: [],
      inputs: {
        quantized_data: v(0, 'uint8', layer.shape),
        zero_point: v(1, 'uint8', [n]),
        scale: v(2, layer.dtype, [n]),
        axis: [{ value: { dtype: 'int32', shape: [], ints: Int32Array.of(layer.transposed ? 1 : 0) } }],
      },
    }];
  }
  const qd = report.dataDtype!;
  const ss = report.scaleShape!;
  return [{
    type: 'constexpr_blockwise_shift_scale', name: layer.weightName, attributes: {}, outputs: out, blocks: [],
    inputs: { data: v(0, qd, layer.shape), scale: v(1, layer.dtype, ss), offset: v(2, qd, ss) },
  }];
}

function layerwiseHandler(byWeight: ReadonlyMap<string, CompressedLayer>): PassHandler {
  return {
    api: 'prune',
    plan(c: WeightCandidate) {
      const l = byWeight.get(c.name);
      if (!l) return { skip: 'not a compressed layer' };
      return { kind: 'layerwise_copy', file: l.file, offsets: l.report.offsets };
    },
    emit(c: WeightCandidate, r: CompressResult, ctx: PassContext): string {
      const l = byWeight.get(c.name)!;
      const opset = ctx.opset(c.fn);
      const dtype = c.dtype;
      if (l.method === 'sparsegpt' && l.sparseCodes) {
        // coremltools' joint prune → quantize form (spec §4.5): the mask input of sparse_to_dense is
        // a value bound to the same blob as data_mask; output 0 is unused.
        const name = `${c.name}_sparsified`;
        const q = `${name}_nonzero_data_0_quantized`;
        const [mask, codes, scale, offset] = r.outputs;
        const qd = l.report.dataDtype! as MilDType;
        const ss = l.report.scaleShape!;
        const nz = codes!.elementCount;
        const deq = makeConstexprOp(opset, 'constexpr_sparse_blockwise_shift_scale', q, [
          ['data_mask', outputValue(mask!, c.shape, 'uint1')],
          ['nonzero_data', outputValue(codes!, [nz], qd)],
          ['scale', outputValue(scale!, ss, dtype)],
          ['offset', outputValue(offset!, ss, qd)],
        ], [{ name: `${q}_0`, type: tensorType('uint1', c.shape) }, { name: `${q}_1`, type: tensorType(dtype, [nz]) }]);
        const op = makeConstexprOp(opset, 'constexpr_sparse_to_dense', name, [
          ['nonzero_data', `${q}_1`],
          ['mask', outputValue(mask!, c.shape, 'uint1')],
        ], [{ name, type: tensorType(dtype, c.shape) }]);
        c.op.block.replaceConst(c.op, [deq, op], name);
        return l.detail;
      }
      if (l.method === 'sparsegpt') {
        const name = `${c.name}_sparsified`;
        const [nonzero, mask] = r.outputs;
        const op = makeConstexprOp(opset, 'constexpr_sparse_to_dense', name, [
          ['nonzero_data', outputValue(nonzero!, [nonzero!.elementCount], dtype)],
          ['mask', l.ios16 ? outputValue(mask!, [mask!.elementCount], 'uint8') : outputValue(mask!, c.shape, 'uint1')],
          ['shape', l.ios16 ? uint32Vector(c.shape) : undefined],
        ], [{ name, type: tensorType(dtype, c.shape) }]);
        c.op.block.replaceConst(c.op, [op], name);
        return l.detail;
      }
      const name = `${c.name}_quantized`;
      if (l.ios16) {
        const [q, zp, scale] = r.outputs;
        const n = scale!.elementCount;
        const op = makeConstexprOp(opset, 'constexpr_affine_dequantize', name, [
          ['quantized_data', outputValue(q!, c.shape, 'uint8')],
          ['zero_point', outputValue(zp!, [n], 'uint8')],
          ['scale', outputValue(scale!, [n], dtype)],
          ['axis', encodeImmediateTensor('int32', [l.layer.transposed ? 1 : 0], [])],
        ], [{ name, type: tensorType(dtype, c.shape) }]);
        c.op.block.replaceConst(c.op, [op], name);
        return l.detail;
      }
      const [data, scale, offset] = r.outputs;
      const qd = l.report.dataDtype! as MilDType;
      const ss = l.report.scaleShape!;
      const op = makeConstexprOp(opset, 'constexpr_blockwise_shift_scale', name, [
        ['data', outputValue(data!, c.shape, qd)],
        ['scale', outputValue(scale!, ss, dtype)],
        ['offset', outputValue(offset!, ss, qd)],
      ], [{ name, type: tensorType(dtype, c.shape) }]);
      c.op.block.replaceConst(c.op, [op], name);
      return l.detail;
    },
  };
}

/** The model with every compressed layer written (unsaved; the weight.bin waits in a temp folder). */
export async function writeCompressedLayers(model: Model, layers: readonly CompressedLayer[], options: PassOptions): Promise<CompressedModel> {
  const byWeight = new Map(layers.map((l) => [l.layer.weightName, l]));
  // The shared driver picks weights through a config: name exactly the compressed ones.
  const config = OptimizationConfig.fromDict({
    config_type: 'OpMagnitudePrunerConfig',
    global_config: null,
    op_name_configs: Object.fromEntries([...byWeight.keys()].map((n) => [n, { target_sparsity: 0.5, weight_threshold: 0 }])),
  });
  const { jointCompression: _ignored, ...rest } = options;
  return runPass(model, config, layerwiseHandler(byWeight), rest);
}
