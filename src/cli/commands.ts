/** The list of CLI commands. One file per command in ./commands/. */
import type { Command } from 'commander';
import { registerDoctor } from './commands/doctor.js';
import { registerInfo } from './commands/info.js';

export function registerCommands(program: Command): void {
  registerDoctor(program);
  registerInfo(program);
}
