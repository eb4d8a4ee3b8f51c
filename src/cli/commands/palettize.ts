import type { Command } from 'commander';
import { palettizeWeights } from '../../optimize/palettize.js';
import { registerCompressCommand } from '../compress-command.js';

export function registerPalettize(program: Command): void {
  registerCompressCommand(program, 'palettize', 'Palettize weights: n-bit indices into a look-up table (coremltools palettize_weights)', [
    { flag: '--nbits <n>', description: 'bits per index: 1, 2, 3, 4, 6 or 8' },
    { flag: '--mode <mode>', description: 'kmeans (default), uniform or unique' },
    { flag: '--granularity <g>', description: 'per_tensor (default) or per_grouped_channel' },
    { flag: '--group-size <n>', description: 'channels per LUT for per_grouped_channel (default 32)' },
    { flag: '--channel-axis <n>', description: 'axis the groups run along (default: by op type)' },
    { flag: '--cluster-dim <n>', description: 'vector palettization: values per LUT entry (iOS18)' },
    { flag: '--enable-per-channel-scale', description: 'normalize by a per-channel scale before clustering (iOS18)' },
    { flag: '--lut-dtype <dtype>', description: 'int8 or uint8: store the LUT quantized (iOS18, joint compression)' },
    { flag: '--weight-threshold <n>', description: 'only weights with more elements are palettized (default 2048)' },
    { flag: '--num-kmeans-workers <n>', description: 'accepted for coremltools compatibility; use --threads' },
  ], palettizeWeights);
}
