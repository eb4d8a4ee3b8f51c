/**
 * CLI entry. Each command lives in its own file under src/cli/commands/ and is registered in
 * commands.ts. Errors become one line on stderr and a non-zero exit code.
 */
import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import { registerCommands } from './commands.js';
import { CoreMLOptimizeError, oneLine } from '../errors.js';

/** Exit codes: 0 ok, 1 error, 2 usage error, 3 a check (e.g. compare --min-psnr) failed, 130 aborted. */
export const EXIT = { ok: 0, error: 1, usage: 2, checkFailed: 3, aborted: 130 } as const;

export function buildProgram(): Command {
  const require = createRequire(import.meta.url);
  const pkg = require('../../package.json') as { version: string };
  const program = new Command('coreml-optimize')
    .description('Compress Core ML models (palettize, prune, quantize) and run them — without Python.')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  (program as Command & { abortSignal?: AbortSignal }).abortSignal = controller.signal;
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    if ((err as { name?: string })?.name === 'AbortError') {
      console.error('coreml-optimize: aborted');
      return EXIT.aborted;
    }
    const message = err instanceof CoreMLOptimizeError ? `${err.message} [${err.code}]` : err instanceof Error ? err.message : String(err);
    console.error(`coreml-optimize: ${oneLine(message)}`);
    if (process.env.COREML_OPTIMIZE_DEBUG && err instanceof Error) console.error(err.stack);
    return EXIT.error;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/** The AbortSignal that fires on Ctrl-C, for long commands. */
export function cliSignal(cmd: Command): AbortSignal | undefined {
  let c: Command | null = cmd;
  while (c) {
    const s = (c as Command & { abortSignal?: AbortSignal }).abortSignal;
    if (s) return s;
    c = c.parent;
  }
  return undefined;
}
