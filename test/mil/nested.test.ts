import { describe, expect, it } from 'vitest';
import { Program, makeConstOp, makeOp, type ProgramMsg } from '../../src/mil/program.js';
import { encodeImmediateTensor } from '../../src/mil/values.js';
import { tensorType, tensorDType } from '../../src/mil/types.js';

const f32 = (shape: number[]) => tensorType('fp32', shape);

/** main(x, flag): c = const; r = cond(flag){ then: a = add(x, c) -> a ; else: b = mul(x, c) -> b }; w = while_loop(r){ i -> add(i, c) } */
function program(): ProgramMsg {
  const thenBlock = { outputs: ['a'], operations: [makeOp('add', 'a', { x: 'x', y: 'c' }, [{ name: 'a', type: f32([2]) }])] };
  const elseBlock = { outputs: ['b'], operations: [makeOp('mul', 'b', { x: 'x', y: 'c' }, [{ name: 'b', type: f32([2]) }])] };
  const cond = makeOp('cond', 'r', { pred: 'flag' }, [{ name: 'r', type: f32([2]) }]);
  cond.blocks = [thenBlock, elseBlock];
  const body = { inputs: [{ name: 'i', type: f32([2]) }], outputs: ['j'], operations: [makeOp('add', 'j', { x: 'i', y: 'c' }, [{ name: 'j', type: f32([2]) }])] };
  const loop = makeOp('while_loop', 'w', { loop_vars: 'r' }, [{ name: 'w', type: f32([2]) }]);
  loop.blocks = [body];
  return {
    version: 1,
    functions: {
      main: {
        inputs: [{ name: 'x', type: f32([2]) }, { name: 'flag', type: tensorType('bool', []) }],
        opset: 'CoreML7',
        blockSpecializations: { CoreML7: { outputs: ['w'], operations: [makeConstOp('c', encodeImmediateTensor('fp32', [1, 2], [2])), cond, loop] } },
      },
    },
  };
}

describe('nested blocks', () => {
  it('walk, scope-aware lookup, producers and consumers across blocks', () => {
    const p = new Program(program());
    const fn = p.main;
    expect([...fn.walk()].map(o => o.name)).toEqual(['c', 'r', 'a', 'b', 'w', 'j']);
    expect(Object.fromEntries(p.opCounts())).toEqual({ const: 1, cond: 1, add: 2, mul: 1, while_loop: 1 });
    const cond = fn.producerOf('r')!;
    const [thenB, elseB] = cond.blocks;
    expect(thenB!.owner).toBe(cond);
    expect(thenB!.parent).toBe(fn.block);
    expect(thenB!.lookupVar('a')!.producer!.type).toBe('add');
    expect(thenB!.lookupVar('c')!.producer!.isConst).toBe(true);
    expect(tensorDType(thenB!.lookupVar('x')!.type)).toBe('fp32');
    expect(thenB!.lookupVar('b')).toBeUndefined(); // defined in the sibling block only
    expect(elseB!.lookupVar('b')).toBeDefined();
    const body = fn.producerOf('w')!.blocks[0]!;
    expect(body.lookupVar('i')!.blockInput).toBe(body);
    expect(fn.block.lookupVar('i')).toBeUndefined();
    expect(fn.consumersOf('c').map(u => `${u.op!.name}.${u.input}`).sort()).toEqual(['a.y', 'b.y', 'j.y']);
    expect(fn.consumersOf('j').map(u => u.blockOutput === body)).toEqual([true]);
    expect(fn.producerOf('j')!.block).toBe(body);
  });

  it('renameUses reaches nested blocks; unedited program re-encodes identically', () => {
    const p = new Program(program());
    const before = p.encode();
    expect(Program.decode(before).encode()).toEqual(before);
    const fn = p.main;
    const constOp = fn.producerOf('c')!;
    fn.block.replaceConst(constOp, [makeConstOp('c2', encodeImmediateTensor('fp32', [3, 4], [2]))], 'c2');
    const back = Program.decode(p.encode());
    expect(back.main.consumersOf('c')).toEqual([]);
    expect(back.main.consumersOf('c2').map(u => u.op!.name).sort()).toEqual(['a', 'b', 'j']);
  });

  it('validation rejects a missing active block and rank/dimension mismatches, naming the file', () => {
    const bad = program();
    bad.functions!['main']!.opset = 'CoreML8';
    expect(() => new Program(bad, { file: 'm.mlmodel' })).toThrow(/m\.mlmodel: function main has no block for its opset "CoreML8"/);
    const bad2 = program();
    bad2.functions!['main']!.inputs![0]!.type!.tensorType!.rank = 3;
    expect(() => new Program(bad2, { file: 'm.mlmodel' })).toThrow(/m\.mlmodel: function main input x: tensor rank 3 but 1 dimensions/);
    const bad3 = program();
    bad3.version = 2;
    expect(() => new Program(bad3, { file: 'm.mlmodel' })).toThrow(/version is 2, expected 1/);
  });
});
