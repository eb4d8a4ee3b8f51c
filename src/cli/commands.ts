/** The list of CLI commands. One file per command in ./commands/. */
import type { Command } from 'commander';
import { registerCompare } from './commands/compare.js';
import { registerDemo } from './commands/demo.js';
import { registerDoctor } from './commands/doctor.js';
import { registerPalettize } from './commands/palettize.js';
import { registerPredict } from './commands/predict.js';
import { registerInfo } from './commands/info.js';
import { registerPrune } from './commands/prune.js';
import { registerQuantize } from './commands/quantize.js';
import { registerCompress } from './commands/compress.js';
import { registerDecompress } from './commands/decompress.js';
import { registerTokenize } from './commands/tokenize.js';
import { registerGenerate } from './commands/generate.js';
import { registerConvert } from './commands/convert.js';
import { registerSparseGpt } from './commands/sparsegpt.js';
import { registerGptq } from './commands/gptq.js';
import { registerStudy } from './commands/study.js';

export function registerCommands(program: Command): void {
  registerDemo(program);
  registerDoctor(program);
  registerPalettize(program);
  registerInfo(program);
  registerPredict(program);
  registerCompare(program);
  registerPrune(program);
  registerQuantize(program);
  registerCompress(program);
  registerDecompress(program);
  registerTokenize(program);
  registerGenerate(program);
  registerConvert(program);
  registerSparseGpt(program);
  registerGptq(program);
  registerStudy(program);
}
