import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { sparseGPT } from '../../optimize/sparsegpt/index.js';
import { finite, registerLayerwiseCommand } from '../layerwise-command.js';

export function registerSparseGpt(program: Command): void {
  registerLayerwiseCommand(program, {
    name: 'sparsegpt',
    algorithm: 'sparse_gpt',
    description: 'Prune with SparseGPT on calibration data (coremltools LayerwiseCompressor + ModuleSparseGPTConfig, on the Core ML graph)',
    flags: [
      ['--target-sparsity <f>', 'fraction of zeros, 0..1 (default 0.5)'],
      ['--n-m-ratio <n:m>', 'n:m sparsity, e.g. 2:4 (n of every m consecutive input columns are zero)'],
      ['--weight-dtype <t>', 'surviving weights snapped to a grid: uint8 (coremltools\' default), int8, uint4, int4; float16 / float32 = pure pruning'],
      ['--quantization-scheme <s>', 'symmetric (default) or affine, with an integer --weight-dtype'],
    ],
    moduleConfig(o) {
      const c: Record<string, unknown> = {};
      if (o['targetSparsity'] !== undefined) c['target_sparsity'] = finite('--target-sparsity', String(o['targetSparsity']));
      if (o['nMRatio'] !== undefined) {
        const m = /^(\d+):(\d+)$/.exec(String(o['nMRatio']));
        if (!m) throw new ConfigError(`--n-m-ratio must look like 2:4, got "${String(o['nMRatio'])}"`);
        c['n_m_ratio'] = [Number(m[1]), Number(m[2])];
      }
      if (o['weightDtype'] !== undefined) c['weight_dtype'] = String(o['weightDtype']);
      if (o['quantizationScheme'] !== undefined) c['quantization_scheme'] = String(o['quantizationScheme']);
      return c;
    },
    run: sparseGPT,
  });
}
