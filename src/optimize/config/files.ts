/** Loading an OptimizationConfig from a file. */
import { OptimizationConfig } from './optimization-config.js';
import { readDataFile, withFile } from './parse.js';

/** Loads an OptimizationConfig (coremltools from_dict schema) from a .yaml/.yml/.json file; errors name the file. */
export function loadConfigFile(path: string): OptimizationConfig {
  const data = readDataFile(path);
  return withFile(path, () => OptimizationConfig.fromDict(data));
}
