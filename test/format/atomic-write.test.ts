import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeAtomically, writeFileAtomically } from '../../src/util/atomic-write.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-atomic-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const leftovers = () => fs.readdirSync(tmp).filter((n) => n.startsWith('.'));

describe('atomic writes', () => {
  it('writes and replaces a file, leaving no temporaries', async () => {
    const f = path.join(tmp, 'a.bin');
    await writeFileAtomically(f, 'one');
    await writeFileAtomically(f, 'two');
    expect(fs.readFileSync(f, 'utf8')).toBe('two');
    expect(leftovers()).toEqual([]);
  });

  it('a failing build leaves the existing destination untouched and removes the temporary', async () => {
    const d = path.join(tmp, 'dir.out');
    await writeAtomically(d, async (t) => {
      fs.mkdirSync(t);
      fs.writeFileSync(path.join(t, 'x'), 'old');
    });
    await expect(
      writeAtomically(d, async (t) => {
        fs.mkdirSync(t);
        fs.writeFileSync(path.join(t, 'x'), 'half');
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(fs.readFileSync(path.join(d, 'x'), 'utf8')).toBe('old');
    expect(leftovers()).toEqual([]);
  });

  it('replaces an existing directory only when the new one is complete', async () => {
    const d = path.join(tmp, 'dir2.out');
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'stale'), 's');
    await writeAtomically(d, async (t) => {
      expect(fs.existsSync(path.join(d, 'stale'))).toBe(true);
      fs.mkdirSync(t);
      fs.writeFileSync(path.join(t, 'fresh'), 'f');
    });
    expect(fs.readdirSync(d)).toEqual(['fresh']);
    expect(leftovers()).toEqual([]);
  });
});
