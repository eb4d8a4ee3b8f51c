/**
 * The shared shape of `palettize`, `prune` and `quantize`: IN OUT, one flag per config key or
 * --config FILE, --threads, a progress bar on a TTY and a summary table (or --json).
 */
import type { Command } from 'commander';
import { loadModel } from '../model.js';
import { configFromCliFlags, loadConfigFile, type CompressionApi, type OptimizationConfig } from '../optimize/config.js';
import type { CompressedModel, CompressionReport, PassOptions } from '../optimize/pass.js';
import type { Model } from '../model.js';
import { cliSignal } from './main.js';
import { createProgressBar } from './progress.js';
import { formatBytes, formatSeconds, formatTable } from './table.js';

export interface FlagSpec {
  flag: string;
  description: string;
}

type Runner = (model: Model, config: OptimizationConfig, options: PassOptions) => Promise<CompressedModel>;

export function registerCompressCommand(program: Command, api: CompressionApi, description: string, flags: FlagSpec[], run: Runner): void {
  const cmd = program
    .command(`${api} <input> <output>`)
    .description(description)
    .option('--config <file>', 'OptimizationConfig as YAML or JSON (coremltools from_dict schema)');
  for (const f of flags) cmd.option(f.flag, f.description);
  cmd
    .option('--joint-compression', 'compress already-compressed weights jointly (iOS18+)')
    .option('--threads <n>', 'native threads (default: all cores)')
    .option('--json', 'print the report as JSON')
    .action(async (input: string, output: string, opts: Record<string, unknown>) => {
      const { config: configFile, threads, json, jointCompression, ...rest } = opts;
      const given = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as Record<string, string | boolean>;
      if (configFile && Object.keys(given).length > 0) {
        throw new Error(`use either --config or option flags (${Object.keys(given).map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}), not both`);
      }
      const config = configFile ? loadConfigFile(String(configFile)) : configFromCliFlags(api, given);
      const model = await loadModel(input);
      const bar = createProgressBar(api);
      const signal = cliSignal(cmd);
      const result = await run(model, config, {
        ...(threads !== undefined ? { threads: Number(threads) } : {}),
        ...(signal ? { signal } : {}),
        jointCompression: Boolean(jointCompression),
        onProgress: bar.update,
      });
      bar.done();
      await result.save(output, { newIdentifiers: true, ...(signal ? { signal } : {}) });
      const report = result.compression;
      if (json) {
        console.log(JSON.stringify({ input, output, ...report }, (_k, v) => (v === Infinity ? null : v), 2));
      } else {
        console.log(formatReport(report));
        console.log(`wrote ${output}`);
      }
    });
}

export function formatReport(report: CompressionReport): string {
  const compressed = report.weights.filter((w) => w.status === 'compressed');
  const skipped = report.weights.filter((w) => w.status === 'skipped');
  const rows = compressed.map((w) => [
    w.name, `[${w.shape.join(', ')}]`, w.detail, formatBytes(w.bytesBefore), formatBytes(w.bytesAfter),
    w.sqnrDb === undefined ? '' : Number.isFinite(w.sqnrDb) ? w.sqnrDb.toFixed(1) : 'exact',
  ]);
  const lines = [formatTable(['weight', 'shape', 'compression', 'before', 'after', 'SQNR dB'], rows)];
  if (skipped.length > 0) {
    lines.push('', formatTable(['left as is', 'why'], skipped.map((w) => [w.name, w.detail])));
  }
  const ratio = report.weightFileBytesAfter > 0 ? report.weightFileBytesBefore / report.weightFileBytesAfter : 0;
  lines.push('', `${report.api}: ${compressed.length} weights compressed, ${skipped.length} left as is; ` +
    `weight.bin ${formatBytes(report.weightFileBytesBefore)} -> ${formatBytes(report.weightFileBytesAfter)} (${ratio.toFixed(2)}x) in ${formatSeconds(report.seconds)}`);
  return lines.join('\n');
}
