/**
 * Editing helpers for joint compression (spec §4.5): a joint step inserts one constexpr op in front
 * of the op an earlier step wrote and rebinds (or retypes) that op's inputs, so the chain's final
 * var — what the model's ops read — keeps its name.
 */
import type { Operation, OperationMsg } from '../mil/program.js';
import type { ValueMsg } from '../mil/values.js';

/** Binds `key` of `op` to a var name or an inline value (and keeps the function's use index current). */
export function bindInput(op: Operation, key: string, binding: string | ValueMsg): void {
  op.msg.inputs ??= {};
  op.msg.inputs[key] = { arguments: [typeof binding === 'string' ? { name: binding } : { value: binding }] };
  op.block.fn.noteInputsChanged(op);
}

/** Inserts `msgs` right before `op` (the block updates its producers and uses). */
export function insertBefore(op: Operation, msgs: OperationMsg[]): void {
  op.block.insertBefore(op, msgs);
}

/** The value bound to `key` of `op`, when it is an inline value. */
export function inputValue(op: Operation, key: string): ValueMsg | undefined {
  const b = op.input(key)[0];
  return b?.kind === 'value' ? b.value : undefined;
}

/** Other blob-valued inputs of `op` (in input order), e.g. the mask next to nonzero_data. */
export function otherBlobInputs(op: Operation, except: string): { key: string; value: ValueMsg }[] {
  const out: { key: string; value: ValueMsg }[] = [];
  for (const key of op.inputNames) {
    if (key === except) continue;
    const v = inputValue(op, key);
    if (v?.blobFileValue) out.push({ key, value: v });
  }
  return out;
}
