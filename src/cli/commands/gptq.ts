import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { gptq } from '../../optimize/sparsegpt/index.js';
import { positiveInt, registerLayerwiseCommand } from '../layerwise-command.js';

export function registerGptq(program: Command): void {
  registerLayerwiseCommand(program, {
    name: 'gptq',
    algorithm: 'gptq',
    description: 'Quantize with GPTQ on calibration data (coremltools LayerwiseCompressor + ModuleGPTQConfig, on the Core ML graph)',
    flags: [
      ['--nbits <n>', 'bits per weight: 4 or 8 (4-bit and per_block need an iOS18 model)'],
      ['--granularity <g>', 'per_channel (default), per_tensor or per_block'],
      ['--block-size <n>', 'per_block: input channels per block'],
      ['--quantization-scheme <s>', 'symmetric (default) or affine'],
      ['--act-order', 'process columns by descending Hessian diagonal (use_activation_order_heuristic)'],
    ],
    moduleConfig(o) {
      if (o['nbits'] === undefined) throw new ConfigError('gptq needs --nbits (or --config)');
      const c: Record<string, unknown> = { weight_dtype: `uint${positiveInt('--nbits', String(o['nbits']))}` };
      if (o['granularity'] !== undefined) c['granularity'] = String(o['granularity']);
      if (o['blockSize'] !== undefined) c['block_size'] = positiveInt('--block-size', String(o['blockSize']));
      if (o['quantizationScheme'] !== undefined) c['quantization_scheme'] = String(o['quantizationScheme']);
      if (o['actOrder']) c['use_activation_order_heuristic'] = true;
      return c;
    },
    run: gptq,
  });
}
