import type { Command } from 'commander';
import { buildInfo } from '../../native.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .alias('info-build')
    .description('Show how the native addon was built: BLAS backend, SIMD, threads, Core ML bridge')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const info = buildInfo();
      if (opts.json) {
        console.log(JSON.stringify({ node: process.versions.node, platform: `${process.platform}-${process.arch}`, ...info }, null, 2));
        return;
      }
      console.log(`node          ${process.versions.node} (${process.platform}-${process.arch})`);
      console.log(`build system  ${info.buildSystem ?? 'unknown'} (${info.compiler})`);
      console.log(`BLAS/LAPACK   ${info.blas}: ${info.blasDetail}`);
      console.log(`executor GEMM ${info.executorGemm}`);
      console.log(`SIMD          ${info.simd} (GEMM kernels, detected at run time; compile baseline ${info.simdBaseline})`);
      if (info.blas === 'portable') {
        console.log(
          info.simd === 'scalar'
            ? '              no SIMD GEMM kernel for this CPU: install OpenBLAS (Debian/Ubuntu: apt-get install libopenblas-dev) and run `npm rebuild coreml-optimize`'
            : '              built without a system BLAS; to use OpenBLAS instead: apt-get install libopenblas-dev, then `npm rebuild coreml-optimize`',
        );
      }
      console.log(`threads       ${info.threads} (default ${info.defaultThreads})`);
      console.log(`Core ML       ${info.coreml ? 'available (macOS bridge)' : 'not available (reference CPU executor only)'}`);
      console.log(`modules       ${info.modules.join(', ') || '(core only)'}`);
    });
}
