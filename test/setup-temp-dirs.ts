/**
 * A test worker process lives across test files, so its unsaved models' temporary weight files would
 * wait for the worker's exit, which may come after the suite's temp-folder check: release them after
 * each file, as process exit would.
 */
import { afterAll } from 'vitest';
import { removeAllTempDirs } from '../src/util/temp-dirs.js';

afterAll(() => removeAllTempDirs());
