/**
 * Which weight files an ML Program refers to (BlobFileValue.fileName), found by walking every
 * Value of every function, block and op. Used to tell a complete package from a program-only one.
 */
import type { MilBlock, MilProgram, MilValue, ModelSpec } from './spec-types.js';

/** Distinct BlobFileValue file names of the model's ML Program(s), including those nested in pipelines. */
export function referencedBlobFileNames(spec: ModelSpec): string[] {
  const names = new Set<string>();
  visitModel(spec, names);
  return [...names].sort();
}

function visitModel(spec: ModelSpec, names: Set<string>): void {
  if (spec.mlProgram) visitProgram(spec.mlProgram, names);
  const pipeline = spec.pipeline ?? spec.pipelineClassifier?.pipeline ?? spec.pipelineRegressor?.pipeline;
  for (const m of pipeline?.models ?? []) visitModel(m, names);
}

function visitProgram(program: MilProgram, names: Set<string>): void {
  for (const v of Object.values(program.attributes ?? {})) visitValue(v, names);
  for (const fn of Object.values(program.functions ?? {})) {
    for (const v of Object.values(fn.attributes ?? {})) visitValue(v, names);
    for (const block of Object.values(fn.blockSpecializations ?? {})) visitBlock(block, names);
  }
}

function visitBlock(block: MilBlock, names: Set<string>): void {
  for (const v of Object.values(block.attributes ?? {})) visitValue(v, names);
  for (const op of block.operations ?? []) {
    for (const v of Object.values(op.attributes ?? {})) visitValue(v, names);
    for (const arg of Object.values(op.inputs ?? {})) {
      for (const binding of arg.arguments ?? []) if (binding.value) visitValue(binding.value, names);
    }
    for (const inner of op.blocks ?? []) visitBlock(inner, names);
  }
}

function visitValue(value: MilValue, names: Set<string>): void {
  const blob = value.blobFileValue;
  if (blob && typeof blob.fileName === 'string') names.add(blob.fileName);
  const imm = value.immediateValue;
  if (!imm) return;
  for (const v of imm.tuple?.values ?? []) visitValue(v, names);
  for (const v of imm.list?.values ?? []) visitValue(v, names);
  for (const kv of imm.dictionary?.values ?? []) {
    if (kv.key) visitValue(kv.key, names);
    if (kv.value) visitValue(kv.value, names);
  }
}
