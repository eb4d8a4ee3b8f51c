/** The op types of a model's main function, in program order (what a compression pass wrote). */
import type { Model } from '../../src/model.js';
import { openProgram } from '../../src/optimize/pass.js';

export function opTypes(m: Model): string[] {
  const { program, close } = openProgram(m, 'test');
  try {
    return [...program.main.walk()].map((o) => o.type);
  } finally {
    close();
  }
}
