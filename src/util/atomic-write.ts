/**
 * Atomic output: everything is built at a temporary sibling of the destination (same directory, so
 * same filesystem) and renamed into place only when complete. A failure removes the temporary and
 * leaves any existing destination untouched.
 */
import { randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';

/** `<dir>/.<base>.<tag>-<uuid>`: hidden, unique, next to `dest`. */
export function tempSiblingPath(dest: string, tag = 'tmp'): string {
  const abs = path.resolve(dest);
  return path.join(path.dirname(abs), `.${path.basename(abs)}.${tag}-${randomUUID()}`);
}

/**
 * Build `dest` (a file or a directory) through `build(tempPath)`, then move it into place.
 * An existing `dest` is replaced only after `build` succeeded: it is first renamed aside, the new
 * output renamed in, then the old one removed (restored if the second rename fails).
 */
export async function writeAtomically<T>(dest: string, build: (tempPath: string) => Promise<T>): Promise<T> {
  const target = path.resolve(dest);
  await fsp.mkdir(path.dirname(target), { recursive: true });
  const temp = tempSiblingPath(target);
  let result: T;
  try {
    result = await build(temp);
  } catch (err) {
    await fsp.rm(temp, { recursive: true, force: true });
    throw err;
  }
  try {
    await replaceWith(temp, target);
  } catch (err) {
    await fsp.rm(temp, { recursive: true, force: true });
    throw err;
  }
  return result;
}

/** Move `from` to `to`, replacing whatever is at `to` (the swap step of writeAtomically). */
export async function replaceWith(from: string, to: string): Promise<void> {
  const existing = await fsp.lstat(to).catch(() => undefined);
  if (!existing) {
    await fsp.rename(from, to);
    return;
  }
  const fromIsDir = (await fsp.lstat(from)).isDirectory();
  if (!fromIsDir && !existing.isDirectory()) {
    // rename(2) replaces a file atomically.
    await fsp.rename(from, to);
    return;
  }
  const aside = tempSiblingPath(to, 'old');
  await fsp.rename(to, aside);
  try {
    await fsp.rename(from, to);
  } catch (err) {
    await fsp.rename(aside, to).catch(() => undefined);
    throw err;
  }
  await fsp.rm(aside, { recursive: true, force: true });
}

/** Write bytes to `dest` via a temporary sibling file + rename. */
export async function writeFileAtomically(dest: string, data: Uint8Array | string): Promise<void> {
  await writeAtomically(dest, async (temp) => {
    await fsp.writeFile(temp, data, { flag: 'wx' });
  });
}

/**
 * Move a file, falling back to copy (then the caller removes the source) across filesystems.
 * Returns true when the source was renamed away, false when it was copied.
 */
export async function moveOrCopyFile(from: string, to: string): Promise<boolean> {
  try {
    await fsp.rename(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await fsp.copyFile(from, to);
    return false;
  }
}
