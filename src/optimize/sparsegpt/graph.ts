/**
 * The program as the layerwise driver sees it (on the executor's lowered graph description):
 * which ops have a weight SparseGPT / GPTQ can compress (linear, matmul with a const y, conv), which
 * it must leave (and why), and sub-programs cut out of the main block: a range of top-level ops,
 * the const ops they read, the values crossing into the range as inputs and the values later
 * ranges need as outputs. The executor runs sub-programs like any program.
 */
import type { GraphBlock, GraphDescription, GraphNamedType, GraphOp, GraphValue } from '../../runtime/executor.js';

export type LayerKind = 'linear' | 'matmul' | 'conv';

export interface LayerOp {
  /** Op name (the executor's node name). */
  name: string;
  kind: LayerKind;
  /** The const op holding the weight, its output var and value (a blob). */
  weightName: string;
  weightValue: GraphValue & { blob: { file: string; offset: number } };
  dtype: 'fp16' | 'fp32';
  shape: number[];
  /** matmul with y [K, N] (transpose_y false): SparseGPT's matrix is yᵀ. */
  transposed: boolean;
  /** SparseGPT's matrix: rows (all groups) × columns (= Hessian columns, one group). */
  rows: number;
  columns: number;
  /** conv groups (one Hessian each); 1 otherwise. */
  groups: number;
  /** kh·kw of a conv (coremltools multiplies GPTQ's block_size by it). */
  window: number;
  /** The activation the op reads. */
  input: string;
  /** Ops with the same key see the same Hessian rows (same input, same unfolding). */
  shareKey: string;
  /** Top-level op index (an op inside a cond / while_loop block has its ancestor's). */
  position: number;
}

export interface SkippedLayer {
  name: string;
  type: string;
  reason: string;
}

const isConstLike = (op: GraphOp): boolean => op.type === 'const' || op.type.startsWith('constexpr_');

function bindingNames(op: GraphOp, out: Set<string>): void {
  for (const args of Object.values(op.inputs)) for (const b of args) if ('name' in b) out.add(b.name);
  for (const block of op.blocks) {
    for (const inner of block.ops) bindingNames(inner, out);
    for (const o of block.outputs) out.add(o);
  }
}

function valueKey(v: GraphValue | undefined): string {
  if (!v) return '-';
  const data = 'ints' in v ? Array.from(v.ints) : 'floats' in v ? Array.from(v.floats) : 'strings' in v ? v.strings : 'bools' in v ? Array.from(v.bools) : 'doubles' in v ? Array.from(v.doubles) : '?';
  return JSON.stringify(data);
}

export class ProgramGraph {
  readonly ops: GraphOp[];
  /** Var name → the const-like top-level op defining it (what sub-programs may pull in). */
  private readonly constDefs = new Map<string, { op: GraphOp; index: number }>();
  /** Var name → any const-like op defining it, nested blocks included (weight lookup). */
  private readonly allConstDefs = new Map<string, GraphOp>();
  /** Var name → type of a non-const top-level value (function inputs and op outputs). */
  private readonly valueTypes = new Map<string, GraphNamedType>();
  private readonly definedAt = new Map<string, number>();
  /** Var name → bindings (ops at any depth) that read it. */
  private readonly readers = new Map<string, number>();
  /** Var name → last top-level index reading it. */
  readonly lastUse = new Map<string, number>();
  private readonly inputNames: Set<string>;

  constructor(readonly desc: GraphDescription) {
    this.ops = desc.block.ops;
    this.inputNames = new Set(desc.inputs.map((i) => i.name));
    for (const i of desc.inputs) this.valueTypes.set(i.name, i);
    const nestedConsts = (block: GraphBlock): void => {
      for (const op of block.ops) {
        if (isConstLike(op)) for (const o of op.outputs) this.allConstDefs.set(o.name, op);
        // Readers at any depth (a weight read twice inside one cond block is shared too).
        for (const args of Object.values(op.inputs)) for (const b of args) if ('name' in b) this.readers.set(b.name, (this.readers.get(b.name) ?? 0) + 1);
        for (const b of op.blocks) nestedConsts(b);
      }
    };
    nestedConsts(desc.block);
    this.ops.forEach((op, index) => {
      if (isConstLike(op)) for (const o of op.outputs) this.constDefs.set(o.name, { op, index });
    });
    this.ops.forEach((op, k) => {
      if (!isConstLike(op)) for (const o of op.outputs) { this.valueTypes.set(o.name, o); this.definedAt.set(o.name, k); }
      const names = new Set<string>();
      bindingNames(op, names);
      if (!isConstLike(op)) for (const n of names) this.lastUse.set(n, Math.max(this.lastUse.get(n) ?? -1, k));
    });
    for (const o of desc.block.outputs) this.lastUse.set(o, Infinity);
  }

  /** The value a binding resolves to when it is a constant (immediate or const op). */
  constant(args: GraphOp['inputs'][string] | undefined): { value: GraphValue; op?: GraphOp } | null {
    const b = args?.[0];
    if (!b) return null;
    if ('value' in b) return { value: b.value };
    const op = this.allConstDefs.get(b.name);
    if (!op || op.type !== 'const') return null;
    const v = op.attributes['val'];
    return v ? { value: v, op } : null;
  }

  private producedByConstexpr(args: GraphOp['inputs'][string] | undefined): boolean {
    const b = args?.[0];
    return !!b && 'name' in b && (this.allConstDefs.get(b.name)?.type.startsWith('constexpr_') ?? false);
  }

  private flag(op: GraphOp, param: string): boolean {
    const c = this.constant(op.inputs[param]);
    if (!c) return false;
    const v = c.value;
    const x = 'bools' in v ? v.bools[0] : 'ints' in v ? v.ints[0] : 'floats' in v ? v.floats[0] : 0;
    return Boolean(x);
  }

  private int(op: GraphOp, param: string, dflt: number): number {
    const c = this.constant(op.inputs[param]);
    if (!c) return dflt;
    const v = c.value;
    return Number('ints' in v ? v.ints[0] : 'doubles' in v ? v.doubles[0] : 'floats' in v ? v.floats[0] : dflt);
  }

  /** Every op with a compressible weight, in program order, and the weight ops it must leave. */
  findLayers(): { layers: LayerOp[]; skipped: SkippedLayer[] } {
    const layers: LayerOp[] = [];
    const skipped: SkippedLayer[] = [];
    const visit = (op: GraphOp, position: number): void => {
      for (const b of op.blocks) for (const inner of b.ops) visit(inner, position);
      if (isConstLike(op)) return;
      const blobConst = (param: string) => {
        const c = this.constant(op.inputs[param]);
        return c && 'blob' in c.value ? (c as { value: LayerOp['weightValue']; op: GraphOp }) : null;
      };
      const skip = (reason: string): void => {
        skipped.push({ name: op.name, type: op.type, reason });
      };
      let weightParam: string;
      let kind: LayerKind;
      if (op.type === 'linear') {
        weightParam = 'weight';
        kind = 'linear';
      } else if (op.type === 'matmul') {
        if (!blobConst('y')) {
          if (blobConst('x')) skip('matmul whose const operand is x: the weight would multiply from the left (not supported)');
          else if (this.producedByConstexpr(op.inputs['y'])) skip('the weight is already compressed (a constexpr op)');
          return;
        }
        weightParam = 'y';
        kind = 'matmul';
      } else if (op.type === 'conv') {
        weightParam = 'weight';
        kind = 'conv';
      } else if (op.type === 'conv_transpose') {
        if (blobConst('weight')) skip('conv_transpose: its input is not unfolded like the weight (not supported)');
        return;
      } else if (op.type === 'einsum') {
        const list = op.inputs['values'] ?? [];
        if (list.some((b) => 'name' in b && this.allConstDefs.get(b.name)?.type === 'const')) skip('einsum with a const operand (not supported)');
        return;
      } else {
        return;
      }
      const w = blobConst(weightParam);
      if (!w) {
        if (this.producedByConstexpr(op.inputs[weightParam])) skip('the weight is already compressed (a constexpr op)');
        return;
      }
      const weightName = w.op.outputs[0]!.name;
      const dtype = w.value.dtype;
      const shape = w.value.shape;
      if (dtype !== 'fp16' && dtype !== 'fp32') return skip(`dtype ${dtype}: only float weights are compressed`);
      if ((this.readers.get(weightName) ?? 0) > 1) return skip('the weight feeds several ops');
      const x = op.inputs['x']?.[0];
      if (!x || !('name' in x)) return skip('its input is a constant');
      let rows: number, columns: number, groups = 1, window = 1, transposed = false, shareKey: string;
      if (kind === 'linear') {
        if (shape.length !== 2) return skip(`rank ${shape.length} weight`);
        [rows, columns] = shape as [number, number];
        shareKey = `rows|${x.name}|0|${columns}`;
      } else if (kind === 'matmul') {
        if (shape.length !== 2) return skip(`a rank ${shape.length} const operand (batched matmul) is not supported`);
        transposed = !this.flag(op, 'transpose_y');
        rows = transposed ? shape[1]! : shape[0]!;
        columns = transposed ? shape[0]! : shape[1]!;
        shareKey = `rows|${x.name}|${this.flag(op, 'transpose_x') ? 1 : 0}|${columns}`;
      } else {
        if (shape.length !== 3 && shape.length !== 4) return skip(`rank ${shape.length} conv weight: only 1-D and 2-D convolutions are supported`);
        groups = this.int(op, 'groups', 1);
        window = shape.slice(2).reduce((a, b) => a * b, 1);
        rows = shape[0]!;
        columns = shape[1]! * window;
        if (groups < 1 || rows % groups !== 0) return skip(`groups ${groups} do not divide ${rows} output channels`);
        const geometry = ['strides', 'dilations', 'pad_type', 'pad', 'groups'].map((p) => valueKey(this.constant(op.inputs[p])?.value)).join('|');
        shareKey = `conv|${x.name}|${shape.slice(1).join('x')}|${geometry}`;
      }
      layers.push({ name: op.name, kind, weightName, weightValue: w.value, dtype, shape, transposed, rows, columns, groups, window, input: x.name, shareKey, position });
    };
    this.ops.forEach((op, k) => visit(op, k));
    return { layers, skipped };
  }

  /**
   * A sub-program of the top-level ops [from, to] (const ops excluded; the ones read are added).
   * `replace` swaps a const op (by its output var) for other ops defining the same var.
   */
  subProgram(from: number, to: number, outputs: readonly string[], replace: ReadonlyMap<string, GraphOp[]> = new Map()): GraphDescription {
    const body: { op: GraphOp; index: number }[] = [];
    const used = new Set<string>();
    const defined = new Set<string>();
    for (let k = Math.max(0, from); k <= to && k < this.ops.length; k++) {
      const op = this.ops[k]!;
      if (isConstLike(op)) continue;
      body.push({ op, index: k });
      bindingNames(op, used);
      for (const o of op.outputs) defined.add(o.name);
    }
    const consts = new Map<GraphOp, number>();
    const inputs: GraphNamedType[] = [];
    const addConst = (name: string): boolean => {
      const def = this.constDefs.get(name);
      if (!def) return false;
      if (!consts.has(def.op)) {
        consts.set(def.op, def.index);
        const inner = new Set<string>();
        bindingNames(def.op, inner);
        for (const n of inner) addConst(n);
      }
      return true;
    };
    for (const name of used) {
      if (defined.has(name) || addConst(name)) continue;
      const t = this.valueTypes.get(name);
      if (t && (this.inputNames.has(name) || (this.definedAt.get(name) ?? Infinity) < from)) inputs.push(t);
    }
    const ordered = [...[...consts].map(([op, index]) => ({ op, index })), ...body].sort((a, b) => a.index - b.index);
    const swapIn = (list: readonly GraphOp[]): GraphOp[] => list.flatMap((op) => {
      const swap = op.type === 'const' ? replace.get(op.outputs[0]!.name) : undefined;
      if (swap) return swap;
      // Weights inside cond / while_loop blocks are swapped too.
      return op.blocks.length > 0 ? [{ ...op, blocks: op.blocks.map((b) => ({ ...b, ops: swapIn(b.ops) })) }] : [op];
    });
    const ops = swapIn(ordered.map((o) => o.op));
    return { function: this.desc.function, opset: this.desc.opset, modelDir: this.desc.modelDir, inputs, block: { inputs: [], outputs: [...outputs], ops } };
  }

  /** The candidates (non-const values) read by a top-level op in (to, limit]. */
  liveAfter(to: number, limit: number, candidates: Iterable<string>): string[] {
    const out: string[] = [];
    for (const name of candidates) {
      const last = this.lastUse.get(name) ?? -1;
      if (last > to && last <= limit && !this.constDefs.has(name)) out.push(name);
    }
    return out;
  }

  /** Outputs of the non-const top-level ops in [from, to]. */
  definedIn(from: number, to: number): string[] {
    const out: string[] = [];
    for (let k = Math.max(0, from); k <= to && k < this.ops.length; k++) {
      const op = this.ops[k]!;
      if (!isConstLike(op)) for (const o of op.outputs) out.push(o.name);
    }
    return out;
  }

  get functionInputs(): readonly GraphNamedType[] {
    return this.desc.inputs;
  }
}
