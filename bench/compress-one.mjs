#!/usr/bin/env node
/**
 * Child process of bench/palettize.mjs: applies ONE compression configuration to a model and
 * prints a JSON line with its time, output size, per-weight SQNR summary and peak memory, so each
 * configuration's peak RSS is its own. The compressed weight.bin is not saved (the pass leaves it in
 * a temporary directory that is removed at exit); its size is what the saved package would hold.
 *
 *   node bench/compress-one.mjs --model-path M.mlpackage --api palettize --config '{"nbits":4}' [--threads N]
 *   (--api plan: a {steps: [...]} plan through compressModel; --no-fuse runs every step as its own pass)
 */
import { PASSES } from './lib/compression-configs.mjs';
import { RssSampler, now, parseArgs } from './lib/common.mjs';

const dist = (p) => import(new URL(`../dist/${p}`, import.meta.url).href);

async function main() {
  const args = parseArgs();
  const pass = PASSES[args.api];
  if (!pass) throw new Error(`unknown --api ${args.api}`);
  let mod;
  try {
    mod = await dist(pass.module);
  } catch {
    console.log(JSON.stringify({ unavailable: `${pass.fn} (src/${pass.module.replace(/\.js$/, '.ts')}) is not built on this branch` }));
    return;
  }
  const [{ loadModel }, { OptimizationConfig }] = await Promise.all([dist('model.js'), dist('optimize/config.js')]);
  const config = pass.plan ? JSON.parse(args.config) : OptimizationConfig.fromDict({ config_type: pass.configType, global_config: JSON.parse(args.config) });
  const model = await loadModel(args['model-path']);
  const sampler = new RssSampler().every(250);
  let lastPct = -1;
  const s = now();
  const result = await mod[pass.fn](model, config, {
    ...(args.threads ? { threads: Number(args.threads) } : {}),
    ...(pass.plan && args['no-fuse'] ? { fuse: false } : {}),
    onProgress: (done, total) => {
      const pct = Math.floor((done / total) * 10);
      if (pct !== lastPct && total > 0) { lastPct = pct; process.stderr.write(`    ${pct * 10}%\n`); }
    },
  });
  const seconds = now() - s;
  const mem = sampler.stop();
  const r = result.compression;
  const compressed = r.weights.filter((w) => w.status === 'compressed');
  const sq = compressed.map((w) => w.sqnrDb).filter((v) => v !== undefined && Number.isFinite(v));
  const skipReasons = {};
  for (const w of r.weights) if (w.status === 'skipped') skipReasons[w.detail] = (skipReasons[w.detail] ?? 0) + 1;
  const out = {
    seconds,
    reportSeconds: r.seconds,
    ...(result.passes !== undefined ? { passes: result.passes } : {}),
    bytesBefore: result.steps?.[0]?.weightFileBytesBefore ?? r.weightFileBytesBefore,  // a plan: the model's own size
    bytesAfter: r.weightFileBytesAfter,
    compressed: compressed.length,
    compressedElements: compressed.reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1), 0),
    skipped: r.weights.length - compressed.length,
    skipReasons,
    meanSqnrDb: sq.length ? sq.reduce((a, b) => a + b, 0) / sq.length : null,
    worstSqnrDb: sq.length ? Math.min(...sq) : null,
    worstName: sq.length ? compressed.reduce((a, w) => ((w.sqnrDb ?? Infinity) < (a.sqnrDb ?? Infinity) ? w : a)).name : null,
    ...(args['per-weight'] ? { perWeight: compressed.map((w) => ({ name: w.name, sqnrDb: w.sqnrDb })) } : {}),
    ...mem,
  };
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
