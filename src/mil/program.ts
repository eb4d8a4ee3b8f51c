/**
 * In-memory view of an ML Program (`CoreML.Specification.MILSpec.Program`). The classes wrap the
 * decoded protobuf messages instead of copying them, so an unedited program re-encodes
 * byte-identically and edits are made directly on the messages coremltools' layout uses.
 */
import { ModelFormatError, WeightFileError } from '../errors.js';
import { decodeProgram, encodeProgram } from './proto.js';
import {
  elementCountOf, formatValueType, iosOfOpset, storedBytes, tensorDType, tensorShape, toNumber,
  type Dim, type Long, type MilDType, type ValueTypeMsg, dtypeFromBlob, dtypeFromCode,
} from './types.js';
import { decodeImmediateTensor, halfBitsToFloat, halfBitsToFloatArray, stringScalar, type TensorData, type ValueMsg } from './values.js';

/* ---- message shapes (protobufjs camelCase) ---- */

export interface BindingMsg { name?: string | null; value?: ValueMsg | null }
export interface ArgumentMsg { arguments?: BindingMsg[] | null }
export interface NamedValueTypeMsg { name?: string | null; type?: ValueTypeMsg | null }
export interface OperationMsg {
  type?: string | null;
  inputs?: Record<string, ArgumentMsg> | null;
  outputs?: NamedValueTypeMsg[] | null;
  blocks?: BlockMsg[] | null;
  attributes?: Record<string, ValueMsg> | null;
}
export interface BlockMsg { inputs?: NamedValueTypeMsg[] | null; outputs?: string[] | null; operations?: OperationMsg[] | null; attributes?: Record<string, ValueMsg> | null }
export interface FunctionMsg { inputs?: NamedValueTypeMsg[] | null; opset?: string | null; blockSpecializations?: Record<string, BlockMsg> | null; attributes?: Record<string, ValueMsg> | null }
export interface ProgramMsg { version?: number | Long | null; functions?: Record<string, FunctionMsg> | null; docString?: string | null; attributes?: Record<string, ValueMsg> | null }

/* ---- blob access ---- */

/** What ConstValue needs from a weight file (satisfied by format/blob.ts `BlobFile`). */
export interface BlobSource {
  /** Data of the record whose metadata is at `offset`: fp16 as Uint16Array bits, sub-byte unpacked. */
  read(offset: number): TensorData;
  record?(offset: number): { dtype: string; sizeInBytes: number; elementCount?: number; dataOffset: number };
}
/** Maps a BlobFileValue fileName (`@model_path/weights/weight.bin`) to an open weight file. */
export type BlobResolver = (fileName: string) => BlobSource;

export interface ProgramOptions {
  /** The model file, named in errors. */
  file?: string;
  /** Opens weight files on demand; without it blob values can be described but not read. */
  blobs?: BlobResolver;
  /** Check every type and value up front (default true), so later accessors meet only well-formed data. */
  validate?: boolean;
}

/** A constant tensor: an immediate value (decoded lazily) or a blob reference (read lazily). */
export class ConstValue {
  readonly msg: ValueMsg;
  private readonly resolver: BlobResolver | undefined;
  private readonly what: string;
  private readonly file: string | undefined;
  private cached: TensorData | undefined;

  constructor(msg: ValueMsg, resolver?: BlobResolver, what = 'value', file?: string) {
    this.msg = msg;
    this.resolver = resolver;
    this.what = what;
    this.file = file;
  }
  private formatError(message: string): ModelFormatError { return new ModelFormatError(`${this.what}: ${message}`, { file: this.file }); }
  private weightError(message: string): WeightFileError { return new WeightFileError(`${this.what}: ${message}`, { file: this.file }); }
  get kind(): 'immediate' | 'blob' { return this.msg.blobFileValue ? 'blob' : 'immediate'; }
  get type(): ValueTypeMsg | null | undefined { return this.msg.type; }
  get isTensor(): boolean { return Boolean(this.msg.type?.tensorType) && Boolean(this.msg.blobFileValue || this.msg.immediateValue?.tensor); }
  get dtype(): MilDType { const d = tensorDType(this.msg.type); if (!d) throw this.formatError('not a tensor'); return d; }
  get shape(): Dim[] { return tensorShape(this.msg.type) ?? []; }
  get rank(): number { return this.shape.length; }
  get elementCount(): number { return elementCountOf(this.shape) ?? 0; }
  /** Blob reference, when the value lives in a weight file. */
  get blob(): { fileName: string; offset: number; dtype: MilDType; shape: Dim[] } | undefined {
    const b = this.msg.blobFileValue;
    return b ? { fileName: b.fileName ?? '', offset: toNumber(b.offset), dtype: this.dtype, shape: this.shape } : undefined;
  }
  /** Bytes of the packed data (blob data or immediate payload), excluding the 64-byte blob header. */
  get storedBytes(): number {
    const d = tensorDType(this.msg.type);
    if (!d || d === 'string') return 0;
    return storedBytes(d, this.elementCount);
  }
  /** The values: fp16 as Uint16Array bits, sub-byte one element per entry. Blobs are read now (not cached). */
  data(): TensorData {
    if (this.cached) return this.cached;
    const b = this.blob;
    if (!b) {
      try {
        return (this.cached = decodeImmediateTensor(this.msg, this.what));
      } catch (e) {
        if (e instanceof ModelFormatError && !e.file) throw new ModelFormatError(e.message, { file: this.file, cause: e });
        throw e;
      }
    }
    if (!this.resolver) throw this.weightError(`the weight file ${b.fileName} is not available`);
    const src = this.resolver(b.fileName);
    const rec = src.record?.(b.offset);
    if (rec) {
      const recDtype = dtypeFromBlob(rec.dtype);
      if (recDtype && recDtype !== b.dtype) throw this.weightError(`blob at offset ${b.offset} holds ${recDtype}, the program says ${b.dtype}`);
      if (rec.sizeInBytes !== this.storedBytes) throw this.weightError(`blob at offset ${b.offset} holds ${rec.sizeInBytes} bytes, ${formatValueType(this.msg.type)} needs ${this.storedBytes}`);
    }
    const out = src.read(b.offset);
    if (out.length < this.elementCount) throw this.weightError(`blob at offset ${b.offset} holds ${out.length} elements, need ${this.elementCount}`);
    return out.length === this.elementCount ? out : (out as Uint8Array).subarray(0, this.elementCount);
  }
  /** The values as float32 (fp16 converted, integers widened). */
  toFloat32(): Float32Array {
    const d = this.data();
    if (this.dtype === 'fp16') return halfBitsToFloatArray(d as Uint16Array);
    if (d instanceof Float32Array) return d;
    return Float32Array.from(d as ArrayLike<number>, Number);
  }
  /** A scalar as a JS number/string/boolean (fp16 converted). */
  scalar(): number | string | boolean | bigint {
    const d = this.data();
    const x = d[0];
    if (x === undefined) throw this.formatError('empty tensor where a scalar was expected');
    return this.dtype === 'fp16' ? halfBitsToFloat(x as number) : x;
  }
}

export type Binding = { kind: 'name'; name: string } | { kind: 'value'; value: ValueMsg };

/** An operation parameter as the reader sees it, whether stored as attribute or as input. */
export type Param = { kind: 'var'; name: string } | { kind: 'value'; value: ConstValue };

/** Constexpr ops whose iOS16/17 definitions store parameters as attributes (spec §2.6). */
const IOS16_CONSTEXPR = new Set(['constexpr_affine_dequantize', 'constexpr_cast', 'constexpr_lut_to_dense', 'constexpr_sparse_to_dense']);
export function isConstexprType(type: string): boolean { return type.startsWith('constexpr_'); }

export class Operation {
  readonly msg: OperationMsg;
  block: Block;
  private nested: Block[] | undefined;
  constructor(msg: OperationMsg, block: Block) {
    this.msg = msg;
    this.block = block;
  }
  get type(): string { return this.msg.type ?? ''; }
  /** The `name` attribute coremltools writes; falls back to the first output's name. */
  get name(): string {
    const a = this.msg.attributes?.['name'];
    const s = a?.immediateValue?.tensor?.strings?.values?.[0];
    return s ?? this.outputs[0]?.name ?? '';
  }
  get isConst(): boolean { return this.type === 'const'; }
  get isConstexpr(): boolean { return isConstexprType(this.type); }
  get outputs(): { name: string; type: ValueTypeMsg | null | undefined }[] {
    return (this.msg.outputs ?? []).map(o => ({ name: o.name ?? '', type: o.type }));
  }
  get inputNames(): string[] { return Object.keys(this.msg.inputs ?? {}); }
  /** Bindings of one input argument (variadic inputs have several). */
  input(param: string): Binding[] {
    const arg = this.msg.inputs?.[param];
    return (arg?.arguments ?? []).map(b => (b.value ? { kind: 'value', value: b.value } : { kind: 'name', name: b.name ?? '' }));
  }
  get inputs(): Map<string, Binding[]> { return new Map(this.inputNames.map(k => [k, this.input(k)])); }
  get attributes(): Record<string, ValueMsg> { return this.msg.attributes ?? {}; }
  attribute(key: string): ValueMsg | undefined { return this.msg.attributes?.[key] ?? undefined; }
  get blocks(): Block[] {
    if (!this.nested) this.nested = (this.msg.blocks ?? []).map(b => new Block(b, this.block.fn, this.block, this));
    return this.nested;
  }
  /** The value of a const op (`attributes.val`). */
  constValue(): ConstValue {
    const v = this.attribute('val');
    if (!this.isConst || !v) throw new ModelFormatError(`op ${this.name} (${this.type}) is not a const with a value`, { file: this.block.fn.program.file });
    return new ConstValue(v, this.block.fn.program.blobs, `const ${this.name}`, this.block.fn.program.file);
  }
  /**
   * A parameter read from attributes (iOS16 constexpr style) or inputs (iOS18 style and regular
   * ops). Only the first binding of a variadic input is returned.
   */
  param(key: string): Param | undefined {
    const what = `${this.name}.${key}`;
    const attr = key !== 'name' ? this.attribute(key) : undefined;
    const { blobs, file } = this.block.fn.program;
    if (attr) return { kind: 'value', value: new ConstValue(attr, blobs, what, file) };
    const b = this.input(key)[0];
    if (!b) return undefined;
    return b.kind === 'name' ? { kind: 'var', name: b.name } : { kind: 'value', value: new ConstValue(b.value, blobs, what, file) };
  }
  /** Parameter names in the order they are stored (attributes minus `name`, then inputs). */
  get paramNames(): string[] {
    const attrs = this.isConst ? [] : Object.keys(this.attributes).filter(k => k !== 'name');
    return [...attrs, ...this.inputNames.filter(k => !attrs.includes(k))];
  }
}

export class Block {
  readonly msg: BlockMsg;
  readonly fn: MilFunction;
  readonly parent: Block | undefined;
  readonly owner: Operation | undefined;
  private ops: Operation[] | undefined;
  constructor(msg: BlockMsg, fn: MilFunction, parent?: Block, owner?: Operation) {
    this.msg = msg;
    this.fn = fn;
    this.parent = parent;
    this.owner = owner;
  }
  get inputs(): { name: string; type: ValueTypeMsg | null | undefined }[] { return (this.msg.inputs ?? []).map(i => ({ name: i.name ?? '', type: i.type })); }
  get outputs(): string[] { return [...(this.msg.outputs ?? [])]; }
  get operations(): Operation[] {
    if (!this.ops) this.ops = (this.msg.operations ?? []).map(o => new Operation(o, this));
    return this.ops;
  }
  /** Where a var is defined, searching this block, then enclosing blocks, then the function inputs. */
  lookupVar(name: string): { name: string; type: ValueTypeMsg | null | undefined; producer?: Operation; blockInput?: Block } | undefined {
    const producer = this.fn.producerOf(name);
    for (let b: Block | undefined = this; b; b = b.parent) {
      if (producer && producer.block === b) return { name, type: producer.outputs.find(o => o.name === name)!.type, producer };
      for (const i of b.inputs) if (i.name === name) return { name, type: i.type, blockInput: b };
    }
    const fi = this.fn.inputs.find(i => i.name === name);
    return fi ? { name, type: fi.type } : undefined;
  }

  /* ---- editing ---- */
  // Edits keep the op wrappers of the rest of the block and update the function's use/producer
  // index in place: compressing a UNet edits ~800 weights of a ~3,400-op function, and rebuilding
  // the index after each edit made applying a plan quadratic (~30 s of a 70 s run).

  private indexOf(op: Operation): number {
    const i = (this.msg.operations ?? []).indexOf(op.msg);
    if (i < 0) throw new Error(`op ${op.name} is not in this block`);
    return i;
  }
  /** Remove an op (its outputs must no longer be used). */
  removeOp(op: Operation): void {
    const used = op.outputs.flatMap(o => this.fn.consumersOf(o.name));
    if (used.length) throw new Error(`cannot remove ${op.name}: its output is still used by ${used.map(u => u.op?.name ?? 'block output').join(', ')}`);
    const at = this.indexOf(op);
    this.msg.operations!.splice(at, 1);
    this.ops?.splice(at, 1);
    this.fn.noteRemoved(op);
  }
  /** Insert op messages before `anchor` (or at the end); returns their wrappers. */
  insertBefore(anchor: Operation | undefined, msgs: OperationMsg[]): Operation[] {
    if (!this.msg.operations) this.msg.operations = [];
    const at = anchor ? this.indexOf(anchor) : this.msg.operations.length;
    this.msg.operations.splice(at, 0, ...msgs);
    const added = msgs.map(m => new Operation(m, this));
    this.ops?.splice(at, 0, ...added);
    this.fn.noteInserted(added);
    return added;
  }
  /**
   * Replace a const op by a chain of ops (usually constexpr_*) placed where the const was;
   * every use of the const's var is rebound to `resultVar` (an output of the chain), as
   * coremltools does (the new op has a new name, consumers are rebound).
   */
  replaceConst(constOp: Operation, chain: OperationMsg[], resultVar: string): Operation[] {
    if (!constOp.isConst) throw new Error(`${constOp.name} is not a const op`);
    const old = constOp.outputs[0]!.name;
    const added = this.insertBefore(constOp, chain);
    this.fn.renameUses(old, resultVar);
    this.removeOp(constOp);
    return added;
  }
}

/** One use of a var: an op input (name and position) or a block output. */
export type Use = { op?: Operation; input?: string; index?: number; blockOutput?: Block };

/**
 * Work counters of the graph model (ops visited by walk(), use/producer index builds and the ops
 * they indexed). Tests assert on these instead of wall-clock time: "linear in the op count" is a
 * count, and counts do not flake on a loaded machine.
 */
export const milWorkCounters = { walkedOps: 0, indexBuilds: 0, indexedOps: 0 };
export function resetMilWorkCounters(): void {
  milWorkCounters.walkedOps = 0;
  milWorkCounters.indexBuilds = 0;
  milWorkCounters.indexedOps = 0;
}

export class MilFunction {
  readonly name: string;
  readonly msg: FunctionMsg;
  readonly program: Program;
  private root: Block | undefined;
  private uses: Map<string, Use[]> | undefined;
  private producers: Map<string, Operation> | undefined;
  private inputsOf: Map<Operation, string[]> | undefined;  // var names each op's inputs bind
  constructor(name: string, msg: FunctionMsg, program: Program) {
    this.name = name;
    this.msg = msg;
    this.program = program;
  }
  get opset(): string { return this.msg.opset ?? ''; }
  /** iOS generation the opset targets (CoreML6 → 16, CoreML8 → 18, CoreML9 → 26). */
  get iosVersion(): number { return iosOfOpset(this.opset); }
  get inputs(): { name: string; type: ValueTypeMsg | null | undefined }[] { return (this.msg.inputs ?? []).map(i => ({ name: i.name ?? '', type: i.type })); }
  /** The active block: `blockSpecializations[opset]`. */
  get block(): Block {
    if (!this.root) {
      const b = this.msg.blockSpecializations?.[this.opset];
      if (!b) throw new ModelFormatError(`function ${this.name} has no block for its opset "${this.opset}"`, { file: this.program.file });
      this.root = new Block(b, this);
    }
    return this.root;
  }
  get outputs(): { name: string; type: ValueTypeMsg | null | undefined }[] {
    return this.block.outputs.map(n => ({ name: n, type: this.block.lookupVar(n)?.type }));
  }
  /** Every operation, depth first (nested blocks after their owner op). */
  *walk(block: Block = this.block): Generator<Operation> {
    for (const op of block.operations) {
      milWorkCounters.walkedOps++;
      yield op;
      for (const b of op.blocks) yield* this.walk(b);
    }
  }
  /**
   * After editing the messages directly (not through Block): drops the op wrappers and the
   * use/producer index; both are rebuilt from the messages on the next query.
   */
  invalidate(): void {
    this.root = undefined;
    this.uses = undefined;
    this.producers = undefined;
    this.inputsOf = undefined;
    this.order = undefined;
  }
  private order: Map<Operation, number> | undefined;
  /** Position of an op in walk() order (for sorting ops topologically). */
  positionOf(op: Operation): number {
    if (!this.order) {
      this.order = new Map();
      let i = 0;
      for (const o of this.walk()) this.order.set(o, i++);
    }
    return this.order.get(op) ?? -1;
  }
  private index(): void {
    milWorkCounters.indexBuilds++;
    this.uses = new Map();
    this.producers = new Map();
    this.inputsOf = new Map();
    for (const op of this.block.operations) this.indexOp(op);
    for (const o of this.block.outputs) this.addUse(o, { blockOutput: this.block });
  }
  private addUse(name: string, u: Use): void {
    let l = this.uses!.get(name);
    if (!l) this.uses!.set(name, (l = []));
    l.push(u);
  }
  /** Adds an op (and its nested blocks) to the index. */
  private indexOp(op: Operation): void {
    milWorkCounters.indexedOps++;
    for (const o of op.outputs) this.producers!.set(o.name, op);
    this.indexInputs(op);
    for (const b of op.blocks) {
      for (const inner of b.operations) this.indexOp(inner);
      for (const o of b.outputs) this.addUse(o, { blockOutput: b });
    }
  }
  private indexInputs(op: Operation): void {
    const names: string[] = [];
    for (const key of op.inputNames) op.input(key).forEach((b, index) => {
      if (b.kind !== 'name') return;
      this.addUse(b.name, { op, input: key, index });
      names.push(b.name);
    });
    this.inputsOf!.set(op, names);
  }
  private dropUses(name: string, drop: (u: Use) => boolean): void {
    const kept = (this.uses!.get(name) ?? []).filter(u => !drop(u));
    if (kept.length) this.uses!.set(name, kept);
    else this.uses!.delete(name);
  }
  private unindexInputs(op: Operation): void {
    for (const name of this.inputsOf!.get(op) ?? []) this.dropUses(name, u => u.op === op);
    this.inputsOf!.delete(op);
  }
  private unindexOp(op: Operation): void {
    for (const o of op.outputs) if (this.producers!.get(o.name) === op) this.producers!.delete(o.name);
    this.unindexInputs(op);
    for (const b of op.blocks) {
      for (const inner of b.operations) this.unindexOp(inner);
      for (const o of b.outputs) this.dropUses(o, u => u.blockOutput === b);
    }
  }
  /** Index upkeep for Block edits (a no-op until the index is first built). */
  noteInserted(ops: Operation[]): void {
    this.order = undefined;
    if (this.uses) for (const op of ops) this.indexOp(op);
  }
  noteRemoved(op: Operation): void {
    this.order = undefined;
    if (this.uses) this.unindexOp(op);
  }
  /** Call after rebinding an op's inputs in its message (e.g. joint compression's bindInput). */
  noteInputsChanged(op: Operation): void {
    if (!this.uses) return;
    this.unindexInputs(op);
    this.indexInputs(op);
  }
  /** The op that defines a var (undefined for function inputs and block inputs). */
  producerOf(name: string): Operation | undefined {
    if (!this.producers) this.index();
    return this.producers!.get(name);
  }
  /** Every use of a var: op inputs bound by name (with input and position) and block outputs. */
  consumersOf(name: string): Use[] {
    if (!this.uses) this.index();
    return this.uses!.get(name) ?? [];
  }
  /** Rebind every use of `oldName` (op inputs and block outputs) to `newName`. */
  renameUses(oldName: string, newName: string): void {
    const moved = this.consumersOf(oldName);
    if (moved.length === 0) return;
    for (const u of moved) {
      if (u.op) {
        u.op.msg.inputs![u.input!]!.arguments![u.index!] = { name: newName };
        const names = this.inputsOf!.get(u.op);
        if (names) names[names.indexOf(oldName)] = newName;
      } else if (u.blockOutput) {
        const outs = u.blockOutput.msg.outputs!;
        for (let i = 0; i < outs.length; i++) if (outs[i] === oldName) outs[i] = newName;
      }
    }
    this.uses!.delete(oldName);
    for (const u of moved) this.addUse(newName, u);
  }
}

export class Program {
  readonly msg: ProgramMsg;
  readonly file: string | undefined;
  blobs: BlobResolver | undefined;
  readonly functions: Map<string, MilFunction>;

  constructor(msg: ProgramMsg, options: ProgramOptions = {}) {
    this.msg = msg;
    this.file = options.file;
    this.blobs = options.blobs;
    const v = toNumber(msg.version);
    if (v !== 1) throw new ModelFormatError(`ML Program version is ${v}, expected 1`, { file: this.file });
    this.functions = new Map(Object.entries(msg.functions ?? {}).map(([k, f]) => [k, new MilFunction(k, f, this)]));
    if (this.functions.size === 0) throw new ModelFormatError('ML Program has no functions', { file: this.file });
    if (options.validate !== false) validateProgram(this);
  }
  static decode(bytes: Uint8Array, options: ProgramOptions = {}): Program {
    return new Program(decodeProgram(bytes, options.file), options);
  }
  /** A function by name; default `main` (or the only function). */
  function(name?: string): MilFunction {
    const f = name ? this.functions.get(name) : (this.functions.get('main') ?? [...this.functions.values()][0]);
    if (!f) throw new ModelFormatError(`ML Program has no function "${name}"`, { file: this.file });
    return f;
  }
  get main(): MilFunction { return this.function(); }
  invalidate(): void { for (const f of this.functions.values()) f.invalidate(); }
  /** The (edited) Program message, ready to go back into `Model.mlProgram`. */
  toMessage(): ProgramMsg { return this.msg; }
  encode(): Uint8Array { return encodeProgram(this.msg); }
  /** Op counts per type over all functions and nested blocks. */
  opCounts(fn?: string): Map<string, number> {
    const counts = new Map<string, number>();
    for (const f of fn ? [this.function(fn)] : this.functions.values()) for (const op of f.walk()) counts.set(op.type, (counts.get(op.type) ?? 0) + 1);
    return counts;
  }
}

/* ---- op construction in coremltools' layout ---- */

/** A `const` op: outputs [name], attributes {name, val} (spec §2.6). */
export function makeConstOp(name: string, value: ValueMsg): OperationMsg {
  return { type: 'const', outputs: [{ name, type: value.type }], attributes: { name: stringScalar(name), val: value } };
}

/** A regular op: every input bound by name (or an inline value), `name` attribute. */
export function makeOp(type: string, name: string, inputs: Record<string, string | ValueMsg | (string | ValueMsg)[]>, outputs: { name: string; type: ValueTypeMsg }[]): OperationMsg {
  const ins: Record<string, ArgumentMsg> = {};
  for (const [k, v] of Object.entries(inputs)) ins[k] = { arguments: (Array.isArray(v) ? v : [v]).map(b => (typeof b === 'string' ? { name: b } : { value: b })) };
  const msg: OperationMsg = { type, outputs: outputs.map(o => ({ name: o.name, type: o.type })), attributes: { name: stringScalar(name) } };
  if (Object.keys(ins).length) msg.inputs = ins;
  return msg;
}

/**
 * A constexpr op laid out as coremltools writes it for the given opset: iOS16/17 definitions
 * (and constexpr_affine_dequantize always) store parameters as attributes; iOS18+ definitions
 * store them as inputs, inline values for constants and name bindings for chained constexpr
 * outputs. Parameters are given in the op's parameter order; undefined ones are omitted.
 */
export function makeConstexprOp(opset: string, type: string, name: string, params: [string, ValueMsg | string | undefined][], outputs: { name: string; type: ValueTypeMsg }[]): OperationMsg {
  const attributeStyle = type === 'constexpr_affine_dequantize' || (IOS16_CONSTEXPR.has(type) && iosOfOpset(opset) < 18);
  const present = params.filter((p): p is [string, ValueMsg | string] => p[1] !== undefined);
  if (attributeStyle) {
    const attributes: Record<string, ValueMsg> = {};
    for (const [k, v] of present) {
      if (typeof v === 'string') throw new Error(`${type} (${opset}) stores ${k} as an attribute and cannot take var ${v}`);
      attributes[k] = v;
    }
    attributes['name'] = stringScalar(name);
    return { type, outputs: outputs.map(o => ({ name: o.name, type: o.type })), attributes };
  }
  return makeOp(type, name, Object.fromEntries(present), outputs);
}

/* ---- structural validation ---- */

/**
 * Check what the accessors rely on: known dtypes, rank = number of dimensions, named outputs,
 * bindings with a name or a value, values with a type and an immediate or blob payload, active
 * blocks present. Errors name the file and the op.
 */
export function validateProgram(program: Program): void {
  const file = program.file;
  const fail = (where: string, what: string): never => { throw new ModelFormatError(`${where}: ${what}`, { file }); };
  const checkType = (t: ValueTypeMsg | null | undefined, where: string, depth = 0): void => {
    if (!t) fail(where, 'missing type');
    if (depth > 32) fail(where, 'type nested too deeply');
    const tt = t!.tensorType;
    if (tt) {
      const code = tt.dataType ?? 0;
      try { dtypeFromCode(code); } catch { fail(where, `unknown MIL DataType ${code}`); }
      const rank = toNumber(tt.rank);
      const dims = tt.dimensions ?? [];
      if (rank !== dims.length) fail(where, `tensor rank ${rank} but ${dims.length} dimensions`);
      for (const d of dims) {
        if (d.constant) { const n = toNumber(d.constant.size); if (!Number.isSafeInteger(n) || n < 0) fail(where, `bad dimension ${n}`); }
        else if (!d.unknown) fail(where, 'dimension is neither constant nor unknown');
      }
      return;
    }
    if (t!.listType) return checkType(t!.listType.type, where, depth + 1);
    if (t!.tupleType) { for (const x of t!.tupleType.types ?? []) checkType(x, where, depth + 1); return; }
    if (t!.dictionaryType) { checkType(t!.dictionaryType.keyType, where, depth + 1); checkType(t!.dictionaryType.valueType, where, depth + 1); return; }
    if (t!.stateType) return checkType(t!.stateType.wrappedType, where, depth + 1);
    fail(where, 'empty type');
  };
  const checkValue = (v: ValueMsg | null | undefined, where: string): void => {
    if (!v) fail(where, 'missing value');
    checkType(v!.type, where);
    if (v!.blobFileValue) {
      if (!v!.type?.tensorType) fail(where, 'blob value is not a tensor');
      const off = toNumber(v!.blobFileValue.offset);
      if (!Number.isSafeInteger(off) || off < 0) fail(where, `bad blob offset ${off}`);
      const shape = tensorShape(v!.type)!;
      if (elementCountOf(shape) === undefined) fail(where, 'blob value with an unknown dimension');
    } else if (!v!.immediateValue) fail(where, 'value has neither an immediate nor a blob payload');
  };
  const checkBlock = (b: Block, where: string, depth: number): void => {
    if (depth > 64) fail(where, 'blocks nested too deeply');
    for (const i of b.msg.inputs ?? []) checkType(i.type, `${where} input ${i.name ?? ''}`);
    for (const m of b.msg.operations ?? []) {
      const opWhere = `${where} op ${m.type ?? '?'}`;
      if (!m.type) fail(opWhere, 'op without a type');
      for (const o of m.outputs ?? []) {
        if (!o.name) fail(opWhere, 'output without a name');
        checkType(o.type, `${opWhere} output ${o.name}`);
      }
      for (const [k, a] of Object.entries(m.attributes ?? {})) checkValue(a, `${opWhere} attribute ${k}`);
      for (const [k, arg] of Object.entries(m.inputs ?? {})) {
        for (const bind of arg.arguments ?? []) {
          if (bind.value) checkValue(bind.value, `${opWhere} input ${k}`);
          else if (!bind.name) fail(opWhere, `input ${k} has an empty binding`);
        }
      }
      if (m.type === 'const' && !m.attributes?.['val']) fail(opWhere, 'const without a val attribute');
      if (m.type === 'const' && (m.outputs ?? []).length !== 1) fail(opWhere, 'const must have one output');
    }
    for (const op of b.operations) op.blocks.forEach((nb, i) => checkBlock(nb, `${where} > ${op.name} block ${i}`, depth + 1));
  };
  for (const fn of program.functions.values()) {
    for (const i of fn.msg.inputs ?? []) checkType(i.type, `function ${fn.name} input ${i.name ?? ''}`);
    checkBlock(fn.block, `function ${fn.name}`, 0);
  }
}
