import type { Command } from 'commander';
import { pruneWeights } from '../../optimize/prune.js';
import { registerCompressCommand } from '../compress-command.js';

export function registerPrune(program: Command): void {
  registerCompressCommand(program, 'prune', 'Prune weights to sparse form: magnitude, block, n:m or threshold (coremltools prune_weights)', [
    { flag: '--target-sparsity <f>', description: 'fraction of zeros, 0..1 (magnitude / block pruning); ties at the threshold are all pruned' },
    { flag: '--block-size <n>', description: 'block sparsity: prune blocks of n channels along --dim (conv/linear weights)' },
    { flag: '--n-m-ratio <n:m>', description: 'n:m sparsity, e.g. 2:4: n of every m values along --dim are zero (conv/linear weights)' },
    { flag: '--dim <n>', description: 'axis for --block-size (default 0) or --n-m-ratio (default 1)' },
    { flag: '--threshold <f>', description: 'threshold pruning: |w| <= f becomes 0' },
    { flag: '--minimum-sparsity-percentile <f>', description: 'threshold pruning: keep a weight dense when it ends up less sparse (default 0.5)' },
    { flag: '--weight-threshold <n>', description: 'only weights with more elements are pruned (default 2048)' },
  ], pruneWeights);
}
