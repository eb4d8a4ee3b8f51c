/** `coreml-optimize convert`: flags reach convertDiffusers; bad flags are one-line usage errors. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/model.js';
import { runCli as run } from '../cli/run-cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convert-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const SD15 = '../shared/fixtures/pipeline-reference/models/tiny-sd15';

describe('convert CLI', () => {
  it('converts the selected components with the given sizes and prints JSON', async () => {
    const outDir = path.join(tmp, 'out');
    const r = await run(['convert', SD15, '-o', outDir, '--precision', 'fp32', '--latent-size', '8', '12', '--components', 'vae_decoder', '--unet-batch-size', '1', '--minimum-deployment-target', 'iOS18', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j.packages)).toEqual(['vae_decoder']);
    expect(j.pipeline).toMatchObject({ modelKind: 'sd', latentHeight: 8, latentWidth: 12, unetBatchSize: 1, precision: 'fp32', models: { vaeDecoder: 'VAEDecoder.mlpackage' } });
    expect(fs.existsSync(path.join(outDir, 'VAEDecoder.mlpackage', 'Manifest.json'))).toBe(true);
    expect((await loadModel(path.join(outDir, 'VAEDecoder.mlpackage'))).spec.specificationVersion).toBe(9);
  });

  it('rejects bad flags with a non-zero exit and one line naming the flag', async () => {
    for (const [args, re] of [
      [['--precision', 'fp8'], /--precision must be fp16 or fp32/],
      [['--attention', 'flash'], /--attention must be original or split_einsum/],
      [['--latent-size', '8'], /--latent-size takes two positive integers/],
      [['--components', 'vae,unet'], /--components: unknown vae/],
      [['--unet-batch-size', '3'], /--unet-batch-size must be 1 or 2/],
      [['--minimum-deployment-target', 'iOS15'], /--minimum-deployment-target must be iOS16, iOS17, iOS18/],
    ] as const) {
      const r = await run(['convert', SD15, '-o', path.join(tmp, 'bad'), ...args]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(re);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
