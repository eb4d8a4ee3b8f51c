// Times predict() on the executor-reference networks (run after `npm run build:native`; uses tsx-free
// dist build if present, else the TS sources through vitest's loader is not available — so build first:
// `npx tsc -p tsconfig.build.json`). Usage: node bench/executor.mjs [case ...] [--threads N] [--runs N]
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist', 'index.js');
if (!existsSync(dist)) {
  console.error('bench/executor.mjs needs the compiled package: run `npx tsc -p tsconfig.build.json` first');
  process.exit(1);
}
const { createExecutor, loadModelSync, readNpy, setThreads } = await import(dist);

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(args[i + 1]);
  args.splice(i, 2);
  return v;
};
const threads = opt('--threads', 0);
const runs = opt('--runs', 5);
if (threads) setThreads(threads);
const root = path.join(here, '..', '..', 'shared', 'fixtures', 'executor-reference');
const cases = args.length ? args : ['net_mlp', 'net_vae_decoder_block', 'net_sd_unet_block', 'net_clip_text_encoder'];

for (const name of cases) {
  const dir = path.join(root, name);
  const spec = JSON.parse(readFileSync(path.join(dir, 'case.json'), 'utf8'));
  const t0 = performance.now();
  const exec = createExecutor(loadModelSync(path.join(dir, 'model.mlpackage')));
  const loadMs = performance.now() - t0;
  const inputs = {};
  for (const input of Object.keys(spec.inputs)) {
    const a = readNpy(path.join(dir, 'inputs', `${input}.npy`));
    inputs[input] = { data: a.data, shape: a.shape, dtype: { float32: 'fp32', float16: 'fp16', int32: 'int32' }[a.dtype] };
  }
  await exec.predict(inputs); // warm-up
  const times = [];
  for (let r = 0; r < runs; r++) {
    const s = performance.now();
    await exec.predict(inputs);
    times.push(performance.now() - s);
  }
  times.sort((a, b) => a - b);
  console.log(`${name.padEnd(26)} load ${loadMs.toFixed(1).padStart(7)} ms   predict median ${times[runs >> 1].toFixed(2).padStart(8)} ms   min ${times[0].toFixed(2).padStart(8)} ms`);
}
