/** Runs the CLI in-process and captures what it prints. */
import { vi } from 'vitest';
import { main } from '../../src/cli/main.js';

export async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')); });
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); });
  const previousExitCode = process.exitCode;
  process.exitCode = undefined;
  try {
    const code = await main(['node', 'coreml-optimize', ...args]);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    process.exitCode = previousExitCode;
    log.mockRestore();
    error.mockRestore();
  }
}
