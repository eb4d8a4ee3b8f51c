/**
 * Temporary directories for unsaved models' weight files.
 *
 * Each is named `coreml-optimize-<pid>-<random>` so that the directories of a process that died
 * without cleaning up (SIGKILL, a killed test worker) can be recognised and swept by the next
 * process that creates one. A directory is removed when its model is disposed or saved, and at
 * the latest when the process exits normally.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const TEMP_DIR_PREFIX = 'coreml-optimize-';
const OWNED_NAME = /^coreml-optimize-(\d+)-[A-Za-z0-9]{6}$/;

const live = new Set<string>();
let exitHookInstalled = false;
let swept = false;

/** A fresh temporary directory owned by this process (see the module comment for its lifetime). */
export function createTempDir(root: string = os.tmpdir()): string {
  if (!swept) {
    swept = true;
    sweepStaleTempDirs(root);
  }
  const dir = fs.mkdtempSync(path.join(root, `${TEMP_DIR_PREFIX}${process.pid}-`));
  live.add(dir);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const d of live) fs.rmSync(d, { recursive: true, force: true });
    });
  }
  return dir;
}

/** True when `dir` is a temporary directory this process created and has not removed. */
export function isLiveTempDir(dir: string): boolean {
  return live.has(path.resolve(dir));
}

/** Removes a directory made by createTempDir (no-op for any other path). */
export function removeTempDir(dir: string): void {
  const abs = path.resolve(dir);
  if (!live.delete(abs)) return;
  fs.rmSync(abs, { recursive: true, force: true });
}

/** Removes every temporary directory this process still holds (what exit does; test workers call it between files). */
export function removeAllTempDirs(): void {
  for (const d of [...live]) removeTempDir(d);
}

/** Number of temporary directories this process currently holds. */
export function liveTempDirCount(): number {
  return live.size;
}

/**
 * Removes `coreml-optimize-<pid>-*` directories in `root` whose process no longer exists. A pid
 * that is alive (even if reused by another program) keeps its directories: sweeping errs on the side
 * of leaving a directory rather than deleting one in use. Returns the directories removed.
 */
export function sweepStaleTempDirs(root: string = os.tmpdir()): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = OWNED_NAME.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processExists(pid)) continue;
    const dir = path.join(root, name);
    try {
      fs.rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // Another process may be sweeping the same directory; it is gone either way or not ours to fight over.
    }
  }
  return removed;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
