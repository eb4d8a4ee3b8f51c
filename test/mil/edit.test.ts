import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import { GOLDEN, hasFixtures, loadProgramFixture, packageModelFile } from './helpers.js';
import { makeConstexprOp, makeConstOp, Program, type OperationMsg } from '../../src/mil/program.js';
import { milType } from '../../src/mil/proto.js';
import { encodeImmediateTensor } from '../../src/mil/values.js';
import { tensorType } from '../../src/mil/types.js';

const load = (n: string) => loadProgramFixture(packageModelFile(path.join(GOLDEN, `${n}.mlpackage`))).program;
const asObject = (msg: object) => {
  const T = milType('Operation');
  return T.toObject(T.decode(T.encode(msg as protobuf.Message).finish()), { longs: String, bytes: String, defaults: false });
};

/**
 * Rebuild a compressed golden program from its uncompressed source using only the editing API:
 * every constexpr chain of the golden file is re-created with makeConstexprOp (from its
 * parameters) and swapped in for the source const. The result must equal the golden program.
 */
function rebuild(compressed: string, source: string): { mine: Program; golden: Program } {
  const golden = load(compressed);
  const mine = load(source);
  const sidecar = JSON.parse(fs.readFileSync(path.join(GOLDEN, `${compressed}.json`), 'utf8')) as { weights: { name: string; source_weight: string; chain: string[] }[] };
  const gfn = golden.main;
  const fn = mine.main;
  for (const w of sidecar.weights) {
    if (w.chain[0] === 'const') continue;
    const terminal = gfn.producerOf(w.name)!;
    const chainOps = [...gfn.walk()].filter(op => op.isConstexpr && (op === terminal || gfn.consumersOf(op.outputs.at(-1)!.name).some(u => u.op === terminal) || op.outputs.some(o => gfn.consumersOf(o.name).some(u => u.op === terminal))));
    const msgs: OperationMsg[] = chainOps.map(op =>
      makeConstexprOp(gfn.opset, op.type, op.name,
        op.paramNames.map(k => {
          const p = op.param(k)!;
          return [k, p.kind === 'var' ? p.name : p.value.msg];
        }),
        op.outputs.map(o => ({ name: o.name, type: o.type! }))));
    const constOp = fn.producerOf(w.source_weight)!;
    fn.block.replaceConst(constOp, msgs, w.name);
  }
  // The compression APIs re-export without the buildInfo program attribute.
  delete mine.msg.attributes!['buildInfo'];
  return { mine, golden };
}

describe.skipIf(!hasFixtures)('editing: const → constexpr chains reproduce coremltools output', () => {
  for (const [compressed, source] of [
    ['pal_n4_pertensor_ios16', 'src_a_ios16'],
    ['q_int8_linsym_perchannel_ios16', 'src_a_ios16'],
    ['pal_n4_pertensor_ios18', 'src_a_ios18'],
    ['q_uint4_linsym_perchannel_ios18', 'src_a_ios18'],
    ['joint_prune50_pal4gs16_ios18', 'src_a_ios18'],
    ['joint_prune50_q8_ios18', 'src_a_ios18'],
    ['pal_n4_pcs_pertensor_ios18', 'src_a_ios18'],
  ] as const) {
    it(compressed, () => {
      const sourceOps = [...load(source).main.walk()].map(o => `${o.type}:${o.name}`);
      const { mine, golden } = rebuild(compressed, source);
      const gfn = golden.main;
      const fn = mine.main;
      // coremltools' re-export renames some cast ops; everything else keeps its place, and each
      // const became its constexpr chain at the same position.
      const mineOps = [...fn.walk()];
      let k = 0;
      for (const want of sourceOps) {
        if (want.startsWith('const:') && !fn.producerOf(want.slice(6))) {
          while (mineOps[k]!.isConstexpr) k++;
          continue;
        }
        expect(`${mineOps[k]!.type}:${mineOps[k]!.name}`).toBe(want);
        k++;
      }
      let compared = 0;
      for (const op of fn.walk()) {
        if (!op.isConstexpr) continue;
        const g = [...gfn.walk()].find(o => o.name === op.name)!;
        expect(asObject(op.msg), op.name).toEqual(asObject(g.msg));
        for (const o of op.outputs) {
          const users = (f: typeof fn, n: string) => f.consumersOf(n).map(u => `${u.op?.type}.${u.input}`).sort();
          expect(users(fn, o.name)).toEqual(users(gfn, o.name));
        }
        compared++;
      }
      expect(compared).toBe([...gfn.walk()].filter(o => o.isConstexpr).length);
      expect(mine.encode().length).toBeGreaterThan(0);
    });
  }
});

describe('editing API on a small program', () => {
  it('insert, rename, remove; removing a used op is refused', async () => {
    const { ProgramBuilder } = await import('../../src/mil/builder.js');
    const b = new ProgramBuilder({ specVersion: 9 });
    const x = b.input('x', 'fp32', [1, 4]);
    const w = b.const('w', new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]), [2, 4], 'fp32');
    const y = b.op('linear', { x, weight: w });
    b.output(y, 'y');
    const { program } = b.buildProgram();
    const fn = program.main;
    const wOp = fn.producerOf('w')!;
    expect(() => fn.block.removeOp(wOp)).toThrow(/still used by linear_0/);
    const idx = makeConstOp('w_indices', encodeImmediateTensor('uint2', [0, 1, 2, 3, 3, 2, 1, 0], [2, 4]));
    const lut = encodeImmediateTensor('fp32', [1, 2, 3, 4], [1, 1, 4, 1]);
    const lutOp = makeConstexprOp(fn.opset, 'constexpr_lut_to_dense', 'w_palettized', [['indices', idx.attributes!['val']!], ['lut', lut], ['vector_axis', undefined]], [{ name: 'w_palettized', type: tensorType('fp32', [2, 4]) }]);
    expect(Object.keys(lutOp.inputs!)).toEqual(['indices', 'lut']);
    expect(Object.keys(lutOp.attributes!)).toEqual(['name']);
    fn.block.replaceConst(wOp, [lutOp], 'w_palettized');
    expect(fn.producerOf('w')).toBeUndefined();
    expect(fn.consumersOf('w_palettized').map(u => `${u.op!.name}.${u.input}`)).toEqual(['linear_0.weight']);
    expect(fn.block.operations.map(o => o.type)).toEqual(['constexpr_lut_to_dense', 'linear', 'identity']);
    // survives an encode/decode round trip
    const back = (await import('../../src/mil/program.js')).Program.decode(program.encode());
    expect([...back.main.walk()].map(o => o.name)).toEqual(['w_palettized', 'linear_0', 'y']);
    // iOS16 layout puts everything in attributes and refuses name bindings
    const old = makeConstexprOp('CoreML6', 'constexpr_lut_to_dense', 'a', [['lut', lut]], []);
    expect(Object.keys(old.attributes!)).toEqual(['lut', 'name']);
    expect(old.inputs).toBeUndefined();
    expect(() => makeConstexprOp('CoreML6', 'constexpr_sparse_to_dense', 'a', [['nonzero_data', 'v']], [])).toThrow(/attribute/);
    expect(makeConstexprOp('CoreML8', 'constexpr_affine_dequantize', 'a', [['axis', lut]], []).inputs).toBeUndefined();
  });
});
void protobuf;

describe('editing keeps the use/producer index current', () => {
  /** Every var's producer and uses, by op name, for comparing an edited program with a fresh decode. */
  function indexSnapshot(p: Program): string[] {
    const fn = p.main;
    const names = new Set<string>();
    for (const op of fn.walk()) {
      for (const o of op.outputs) names.add(o.name);
      for (const k of op.inputNames) for (const b of op.input(k)) if (b.kind === 'name') names.add(b.name);
    }
    for (const o of fn.block.outputs) names.add(o);
    return [...names].sort().map((n) => {
      const uses = fn.consumersOf(n).map((u) => (u.op ? `${u.op.name}.${u.input}[${u.index}]` : 'block output')).sort();
      return `${n} <- ${fn.producerOf(n)?.name ?? '-'} -> ${uses.join(',')}`;
    });
  }

  it('after const → chain swaps, rebinding joint-style inputs and removals, as a rebuilt index', async () => {
    const { ProgramBuilder } = await import('../../src/mil/builder.js');
    const b = new ProgramBuilder({ specVersion: 9 });
    let x = b.input('x', 'fp16', [1, 3]);
    for (let i = 0; i < 12; i++) {  // 9-element weights stay immediate (no weight file needed)
      const w = b.const(`w${i}`, [1, 2, 3, 4, 5, 6, 7, 8, 9].map((v) => v * (i + 1)), [3, 3], 'fp16');
      x = b.op('linear', { x, weight: w }, { name: `l${i}` });
    }
    b.output(x);
    const program = b.buildProgram().program;
    const fn = program.main;
    expect(fn.consumersOf('w3').map((u) => u.op?.name)).toEqual(['l3']);  // index built before the edits
    for (let i = 0; i < 12; i += 2) {
      const constOp = fn.producerOf(`w${i}`)!;
      const lut = makeConstexprOp(fn.opset, 'constexpr_lut_to_dense', `w${i}_pal`, [
        ['indices', encodeImmediateTensor('uint1', new Array(9).fill(1), [3, 3])],
        ['lut', encodeImmediateTensor('fp16', [0, 1], [1, 1, 2, 1])],
      ], [{ name: `w${i}_pal`, type: tensorType('fp16', [3, 3]) }]);
      fn.block.replaceConst(constOp, [lut], `w${i}_pal`);
    }
    // A joint-style edit: a new op in front of a chain op, whose input is rebound to it.
    const { bindInput, insertBefore } = await import('../../src/optimize/joint.js');
    const palOp = fn.producerOf('w4_pal')!;
    insertBefore(palOp, [makeConstOp('lut4', encodeImmediateTensor('fp16', [2, 3], [1, 1, 2, 1]))]);
    bindInput(palOp, 'lut', 'lut4');
    expect(fn.consumersOf('lut4').map((u) => `${u.op?.name}.${u.input}`)).toEqual(['w4_pal.lut']);
    expect(fn.consumersOf('w4')).toEqual([]);
    expect(fn.producerOf('w4')).toBeUndefined();
    expect(fn.positionOf(fn.producerOf('lut4')!)).toBeLessThan(fn.positionOf(palOp));
    const fresh = Program.decode(program.encode());
    expect(indexSnapshot(program)).toEqual(indexSnapshot(fresh));
  });
});

describe('invalidate after editing messages directly', () => {
  it('walk() and the index show the edited messages, not the old wrappers', async () => {
    const { ProgramBuilder } = await import('../../src/mil/builder.js');
    const b = new ProgramBuilder({ specVersion: 9 });
    const x = b.input('x', 'fp16', [1, 3]);
    const w = b.const('w', [1, 2, 3, 4, 5, 6, 7, 8, 9], [3, 3], 'fp16');
    b.output(b.op('linear', { x, weight: w }, { name: 'l' }));
    const program = b.buildProgram().program;
    const fn = program.main;
    expect([...fn.walk()].map((o) => o.name)).toEqual(['w', 'l']);
    const msgs = fn.block.msg.operations!;
    msgs.splice(0, 1, makeConstOp('w', encodeImmediateTensor('fp16', [9, 8, 7, 6, 5, 4, 3, 2, 1], [3, 3])));
    fn.invalidate();
    const ops = [...fn.walk()];
    expect(ops.map((o) => o.name)).toEqual(['w', 'l']);
    expect(ops[0]!.msg).toBe(msgs[0]);
    expect(fn.producerOf('w')!.msg).toBe(msgs[0]);
    expect(fn.consumersOf('w').map((u) => u.op?.name)).toEqual(['l']);
  });
});
