import type { Command } from 'commander';
import { linearQuantizeWeights } from '../../optimize/quantize.js';
import { registerCompressCommand } from '../compress-command.js';

export function registerQuantize(program: Command): void {
  registerCompressCommand(program, 'quantize', 'Linearly quantize weights to 8 or 4 bits (coremltools linear_quantize_weights)', [
    { flag: '--mode <mode>', description: 'linear_symmetric (default) or linear' },
    { flag: '--dtype <dtype>', description: 'int8 (default), uint8, int4 or uint4 (4-bit needs iOS18)' },
    { flag: '--granularity <g>', description: 'per_channel (default), per_tensor or per_block (iOS18)' },
    { flag: '--block-size <n>', description: 'per_block: values per block along the input axis (default 32), or one size per axis like 1,32' },
    { flag: '--weight-threshold <n>', description: 'only weights with more elements are quantized (default 2048)' },
  ], linearQuantizeWeights);
}
