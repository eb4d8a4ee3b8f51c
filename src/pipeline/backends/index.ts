/** Picks and loads a backend for one model file. */
import { ConfigError } from '../../errors.js';
import { loadCoreMLBackend } from './coreml-backend.js';
import { loadExecutorBackend } from './executor-backend.js';
import { COMPUTE_UNITS, defaultBackendKind, type BackendLoadOptions, type ModelBackend } from './types.js';

export * from './types.js';
export { coremlAvailable, compiledCachePath, defaultCoreMLCacheDir, CoreMLError } from './coreml-backend.js';

export async function loadBackend(file: string, options: BackendLoadOptions = {}): Promise<ModelBackend> {
  const kind = options.backend ?? defaultBackendKind();
  if (options.computeUnit !== undefined && !COMPUTE_UNITS.includes(options.computeUnit)) {
    throw new ConfigError(`compute unit '${String(options.computeUnit)}' is not one of ${COMPUTE_UNITS.join(', ')}`);
  }
  if (kind === 'executor') return loadExecutorBackend(file, options.threads !== undefined ? { threads: options.threads } : {});
  if (kind === 'coreml') {
    return loadCoreMLBackend(file, {
      ...(options.computeUnit ? { computeUnit: options.computeUnit } : {}),
      ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
    });
  }
  throw new ConfigError(`backend '${String(kind)}' is not one of executor, coreml`);
}
