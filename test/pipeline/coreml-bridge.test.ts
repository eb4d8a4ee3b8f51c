/**
 * The Core ML bridge only builds on macOS; this type-checks it here (clang -fsyntax-only against
 * GNUstep Foundation and the declarations-only CoreML stubs) and shows the check catches a wrong
 * selector and an unguarded deprecated call. Skipped where clang / GNUstep headers are missing
 * (apt-get install clang libgnustep-base-dev).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const hasTools = spawnSync('clang++', ['--version']).status === 0 && fs.existsSync('/usr/include/GNUstep/Foundation/Foundation.h');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coreml-bridge-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const check = (...files: string[]) => spawnSync('bash', ['scripts/check-coreml-bridge.sh', ...files], { cwd: ROOT, encoding: 'utf8' });

describe.skipIf(!hasTools)('Core ML bridge type-check (Linux)', () => {
  it('native/coreml/*.mm and the addon side type-check', () => {
    const r = check();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/type-check/);
  });

  it('a misspelt selector or an unguarded deprecated call fails the check', () => {
    // Copies in a temporary folder, their relative includes pointed back at native/.
    const source = fs.readFileSync(path.join(ROOT, 'native/coreml/coreml_bridge.mm'), 'utf8')
      .replace('#include "../util/fp16.h"', `#include "${path.join(ROOT, 'native/util/fp16.h')}"`)
      .replace('#include "coreml_bridge.h"', `#include "${path.join(ROOT, 'native/coreml/coreml_bridge.h')}"`);
    const typo = path.join(tmp, 'typo.mm');
    const deprecated = path.join(tmp, 'deprecated.mm');
    fs.writeFileSync(typo, source.replace('getBytesWithHandler:', 'getBytesWithHandle:'));
    const r1 = check(typo);
    expect(r1.status).not.toBe(0);
    expect(r1.stderr).toMatch(/no visible @interface for 'MLMultiArray' declares the selector 'getBytesWithHandle:'/);
    fs.writeFileSync(deprecated, source.replaceAll('#pragma clang diagnostic ignored "-Wdeprecated-declarations"', ''));
    const r2 = check(deprecated);
    expect(r2.status).not.toBe(0);
    expect(r2.stderr).toMatch(/'compileModelAtURL:error:' is deprecated/);
  });
});
