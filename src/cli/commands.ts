/** The list of CLI commands. One file per command in ./commands/. */
import type { Command } from 'commander';
import { registerDoctor } from './commands/doctor.js';

export function registerCommands(program: Command): void {
  registerDoctor(program);
}
