/** Traversal helpers over every function and nested block of a Program. */
import type { MilFunction, Operation, Program } from './program.js';

/** Every op of every function, depth first, with its function. */
export function* walkProgram(program: Program): Generator<{ fn: MilFunction; op: Operation }> {
  for (const fn of program.functions.values()) for (const op of fn.walk()) yield { fn, op };
}

/** Op counts per type, sorted by count (descending) then type. */
export function sortedOpCounts(program: Program, fn?: string): [string, number][] {
  return [...program.opCounts(fn)].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** Total op count (nested blocks included). */
export function totalOps(program: Program, fn?: string): number {
  let n = 0;
  for (const c of program.opCounts(fn).values()) n += c;
  return n;
}
