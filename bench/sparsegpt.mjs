// SparseGPT per-layer benchmark (not a test): this package's path (tiled SYRK Hessian, one Cholesky +
// one triangular inverse in the Hessian's own buffer, blocked OBS loop) against the reference
// algorithm's float32 pipeline on the SAME BLAS in the same run (full-GEMM Hessian `H += X·Xᵀ`, then
// chol → cholesky_inverse → chol(upper) on a copy of H with LAPACK threaded by OpenBLAS, then the
// same block loop). SDXL layer shapes, `--samples` × `--tokens` calibration tokens (16 × 1024).
//   node bench/sparsegpt.mjs [--shapes linear1280,linear5120,conv640,conv2560] [--samples 16]
//        [--tokens 1024] [--sparsity 0.5] [--threads N] [--paths both|fast|reference|torch|all] [--torch] [--json]
// --torch (or --paths all / torch) adds the IST-DASLab reference itself on PyTorch (bench/sparsegpt_torch.py,
// /usr/bin/python3 with torch, same X and W, torch.set_num_threads(threads); linear shapes only —
// sparsegpt.py does not unfold conv inputs): its add_batch and fasterprune as written, column loop
// of torch ops included, where the "reference" path above runs this package's block loop.
// CMO_BENCH_TORCH_THREADS=1 runs torch single-threaded (its OpenMP threads spin between the column
// loop's small ops: on a loaded machine that inflates its CPU time).
// Each (shape, path) runs in its own child process so peak RSS is that path's alone. Prints Hessian
// time, prune time (factor + block loop), wall and CPU (all threads), executed GFLOP/s vs the same-run
// SGEMM peak, and memory in units of the Hessian's size: "peak" = peak RSS above the RSS after a
// warm-up with the inputs (X, W) resident; "working" = that minus the outputs (pruned W + mask),
// i.e. what the algorithm needs on top of its inputs and outputs. Also whether the masks agree.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const self = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(self), '..');
const addon = process.env.COREML_OPTIMIZE_ADDON ? require(path.resolve(process.env.COREML_OPTIMIZE_ADDON)) : require('node-gyp-build')(root);

const SHAPES = {
  // name: [kind, rows (C_out), in_channels, kernel] — SDXL UNet layers
  linear1280: ['linear', 1280, 1280, 1], // attention projections
  linear5120: ['linear', 1280, 5120, 1], // GEGLU feed-forward out-projection
  conv640: ['conv', 640, 640, 3], // down/up resnet conv at 640 channels (5,760 columns)
  conv2560: ['conv', 1280, 2560, 3], // up-block resnet conv1 on the 1280+1280 skip concat (23,040 columns)
};

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

// Deterministic N(0,1) (xorshift + Box-Muller), filled in place.
function fillNormal(a, seed) {
  let s = seed >>> 0 || 1;
  const uni = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  for (let i = 0; i < a.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uni())), t = 2 * Math.PI * uni();
    a[i] = r * Math.cos(t);
    if (i + 1 < a.length) a[i + 1] = r * Math.sin(t);
  }
  return a;
}

async function child() {
  const [shapeName, which, outFile] = process.argv.slice(3, 6);
  const [kind, rows, cin, k] = SHAPES[shapeName];
  const samples = Number(arg('samples', 16)), tokens = Number(arg('tokens', 1024)), sparsity = Number(arg('sparsity', 0.5));
  const threads = Number(arg('threads', 0));
  if (threads) addon.setThreads(threads);
  const cols = cin * k * k;
  const side = Math.round(Math.sqrt(tokens));
  // One sample per add_batch call (as the reference's driver does), every sample distinct, with a
  // per-channel scale so the Hessian is not ~identity.
  const per = kind === 'linear' ? tokens * cols : cin * side * side;
  const distinct = samples;
  const xs = Array.from({ length: distinct }, (_, i) => fillNormal(new Float32Array(per), 1234 + i));
  const chScale = fillNormal(new Float32Array(cin), 99).map((v) => 0.5 + Math.abs(v));
  for (const x of xs) for (let i = 0; i < per; i++) x[i] *= chScale[kind === 'linear' ? i % cin : Math.floor(i / (side * side)) % cin];
  const w = fillNormal(new Float32Array(rows * cols), 7).map((v) => v / Math.sqrt(cols));
  const geometry = { inChannels: cin, groups: 1, kernel: [k, k], strides: [1, 1], dilations: [1, 1], pad: [1, 1, 1, 1] };
  if (which === 'torch') {
    if (kind !== 'linear') throw new Error('the PyTorch reference (sparsegpt.py) has no conv unfold: linear shapes only');
    const xf = outFile + '.x', wf = outFile + '.win';
    const fd = fs.openSync(xf, 'w');
    for (let s = 0; s < samples; s++) fs.writeSync(fd, new Uint8Array(xs[s % distinct].buffer));
    fs.closeSync(fd);
    fs.writeFileSync(wf, new Uint8Array(w.buffer));
    const py = spawnSync(process.env.CMO_BENCH_PYTHON ?? '/usr/bin/python3', [path.join(root, 'bench', 'sparsegpt_torch.py'), xf, wf, outFile + '.t', String(rows), String(cols), String(samples), String(tokens), String(sparsity), process.env.CMO_BENCH_TORCH_THREADS ?? String(threads || addon.getThreads())], { stdio: ['ignore', 'inherit', 'inherit'] });
    fs.rmSync(xf, { force: true });
    fs.rmSync(wf, { force: true });
    if (py.status !== 0) throw new Error(`sparsegpt_torch.py failed (${py.status ?? py.signal})`);
    const t = JSON.parse(fs.readFileSync(outFile + '.t.json', 'utf8'));
    fs.renameSync(outFile + '.t.mask', outFile + '.mask');
    fs.renameSync(outFile + '.t.w', outFile + '.w');
    const mask = fs.readFileSync(outFile + '.mask');
    fs.writeFileSync(outFile, JSON.stringify({ shape: shapeName, which, rows, cols, tokens: samples * tokens, unfoldSeconds: 0, ...t, hessianBytes: cols * cols * 4, outputBytes: rows * cols * 5,
      maskSha: createHash('sha256').update(mask).digest('hex').slice(0, 16) }));
    return;
  }
  // Warm-up on a small layer through the same path, so the process's fixed costs (the thread pool,
  // the BLAS's per-thread buffers, the GEMM packing buffers: tens of MB on a 6 MB Hessian) are
  // resident before the baseline and are not counted as this layer's memory.
  {
    const wc = 512, wx = fillNormal(new Float32Array(1024 * wc), 5), ww = fillNormal(new Float32Array(64 * wc), 6);
    const wh = addon.createHessian(wc);
    for (let i = 0; i < 8; i++) {  // every libuv worker thread once (their stacks and malloc arenas)
      if (which === 'fast') await addon.hessianAddRows(wh, wx, 1024, 1);
      else await addon.hessianAddRowsGemm(wh, wx, 1024, 1);
    }
    const wo = { targetSparsity: 0.5, blockSize: 128, dampening: 0.01 };
    await (which === 'fast' ? addon.sparseGptLayer(ww, 64, wc, wh, wo) : addon.sparseGptReferencePath(ww, 64, wc, wh, wo));
    addon.hessianRelease(wh);
  }
  const rssBefore = process.memoryUsage().rss;
  const cpu0 = process.cpuUsage();
  const h = addon.createHessian(cols);
  let unfoldSeconds = 0;
  const t0 = performance.now();
  for (let s = 0; s < samples; s++) {
    const x = xs[s % distinct];
    if (which === 'fast') {
      if (kind === 'linear') await addon.hessianAddRows(h, x, tokens, 1);
      else await addon.hessianAddConvInput(h, x, { batch: 1, height: side, width: side }, geometry, 0);
    } else {
      let rowsX = x, nrows = tokens;
      if (kind === 'conv') {
        const u0 = performance.now();
        rowsX = addon.benchConvUnfold(x, { batch: 1, height: side, width: side }, geometry, 0);
        unfoldSeconds += (performance.now() - u0) / 1000;
        nrows = rowsX.length / cols;
      }
      await addon.hessianAddRowsGemm(h, rowsX, nrows, 1);
    }
  }
  // The reference's Hessian time excludes its unfold (conservative for the comparison).
  const hessianSeconds = (performance.now() - t0) / 1000 - unfoldSeconds;
  const cpu1 = process.cpuUsage();
  const t1 = performance.now();
  const opts = { targetSparsity: sparsity, blockSize: 128, dampening: 0.01 };
  const r = which === 'fast' ? await addon.sparseGptLayer(w, rows, cols, h, opts) : await addon.sparseGptReferencePath(w, rows, cols, h, opts);
  const pruneSeconds = (performance.now() - t1) / 1000;
  const cpu2 = process.cpuUsage();
  const cpuSec = (a, b) => (b.user + b.system - a.user - a.system) / 1e6;
  const peakRss = process.resourceUsage().maxRSS * 1024;
  fs.writeFileSync(outFile + '.mask', r.mask);
  fs.writeFileSync(outFile + '.w', new Uint8Array(r.weight.buffer));
  const result = { shape: shapeName, which, rows, cols, tokens: samples * tokens, hessianSeconds, unfoldSeconds, pruneSeconds, hessianCpuSeconds: cpuSec(cpu0, cpu1), pruneCpuSeconds: cpuSec(cpu1, cpu2), sparsity: r.sparsity, error: r.error, deadColumns: r.deadColumns,
    rssBefore, peakRss, hessianBytes: cols * cols * 4, outputBytes: r.weight.byteLength + r.mask.byteLength, maskSha: createHash('sha256').update(r.mask).digest('hex').slice(0, 16) };
  fs.writeFileSync(outFile, JSON.stringify(result));
}

/** The PyTorch reference against this package's path (same X and W): times, CPU, speed-ups, masks. */
function torchVsFast(t, f, tmp, shape, json) {
  const mt = fs.readFileSync(path.join(tmp, `${shape}-torch.json.mask`)), mf = fs.readFileSync(path.join(tmp, `${shape}-fast.json.mask`));
  let diffs = 0;
  for (let i = 0; i < mt.length; i++) diffs += mt[i] !== mf[i] ? 1 : 0;
  const out = {
    hessianSeconds: t.hessianSeconds, pruneSeconds: t.pruneSeconds, hessianCpuSeconds: t.hessianCpuSeconds, pruneCpuSeconds: t.pruneCpuSeconds,
    peakOverHessian: (t.peakRss - t.rssBefore) / t.hessianBytes, torch: t.torch, threads: t.threads, loss: t.error, maskDiffs: diffs,
    speedup: { hessian: t.hessianSeconds / f.hessianSeconds, prune: t.pruneSeconds / f.pruneSeconds, total: (t.hessianSeconds + t.pruneSeconds) / (f.hessianSeconds + f.pruneSeconds) },
    speedupCpu: { hessian: t.hessianCpuSeconds / f.hessianCpuSeconds, prune: t.pruneCpuSeconds / f.pruneCpuSeconds, total: (t.hessianCpuSeconds + t.pruneCpuSeconds) / (f.hessianCpuSeconds + f.pruneCpuSeconds) },
  };
  if (!json) {
    console.log(`  ${`IST-DASLab sparsegpt.py on PyTorch ${t.torch} (${t.threads} threads)`.padEnd(44)} Hessian ${fmt(t.hessianSeconds)} s  prune ${fmt(t.pruneSeconds)} s  CPU ${fmt(t.hessianCpuSeconds)} + ${fmt(t.pruneCpuSeconds)} s  peak over X ${fmt(out.peakOverHessian)}× H  loss ${t.error.toExponential(4)}`);
    console.log(`  vs PyTorch: speed-up Hessian ${fmt(out.speedup.hessian)}×, prune ${fmt(out.speedup.prune)}×, total ${fmt(out.speedup.total)}× (CPU time ${fmt(out.speedupCpu.hessian)}× / ${fmt(out.speedupCpu.prune)}× / ${fmt(out.speedupCpu.total)}×); masks ${diffs === 0 ? 'identical' : `differ in ${diffs} of ${mt.length}`}`);
  }
  return out;
}

function fmt(x, d = 2) {
  return Number.isFinite(x) ? x.toFixed(d) : String(x);
}

async function main() {
  const shapes = arg('shapes', 'linear1280,linear5120,conv640').split(',');
  const json = process.argv.includes('--json');
  const threads = Number(arg('threads', 0)) || addon.getThreads();
  addon.setThreads(threads);
  const peak = await addon.gemmBenchmark({ m: 2048, n: 2048, k: 2048, repeats: 3, threads });
  const info = { cores: os.cpus().length, threads, load: os.loadavg().map((l) => l.toFixed(2)).join(' '), blas: addon.buildInfo().blas, sgemmGflops: peak.gflops };
  if (!json) console.log(`cores ${info.cores}, threads ${threads}, load ${info.load}, BLAS ${info.blas}, same-run SGEMM peak ${fmt(peak.gflops, 1)} GFLOP/s (2048³)`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-sgpt-bench-'));
  const rowsOut = [];
  for (const shape of shapes) {
    if (!SHAPES[shape]) throw new Error(`unknown shape ${shape} (${Object.keys(SHAPES).join(', ')})`);
    const res = {};
    const pick = arg('paths', 'both');
    const paths = pick === 'both' ? ['fast', 'reference'] : pick === 'all' ? ['fast', 'reference', 'torch'] : [pick];
    if (process.argv.includes('--torch') && !paths.includes('torch')) paths.push('torch');
    if (SHAPES[shape][0] !== 'linear' && paths.includes('torch')) {
      paths.splice(paths.indexOf('torch'), 1);
      if (!json) console.log(`\n${shape}: no PyTorch reference (sparsegpt.py does not unfold conv inputs)`);
    }
    for (const which of paths) {
      const out = path.join(tmp, `${shape}-${which}.json`);
      const passthrough = ['samples', 'tokens', 'sparsity', 'threads'].flatMap((k) => (arg(k) !== undefined ? [`--${k}`, arg(k)] : []));
      const p = spawnSync(process.execPath, [self, '--child', shape, which, out, '--threads', String(threads), ...passthrough], { stdio: ['ignore', 'inherit', 'inherit'] });
      if (p.status !== 0) throw new Error(`${shape}/${which} child failed (${p.status ?? p.signal})`);
      res[which] = JSON.parse(fs.readFileSync(out, 'utf8'));
    }
    if (!res.fast || !res.reference) {
      for (const r of Object.values(res)) {
        const n = r.cols, flops = r.which === 'fast' ? [n * n * r.tokens, (2 * n ** 3) / 3 + r.rows * n * n] : [2 * n * n * r.tokens, (4 * n ** 3) / 3 + r.rows * n * n];
        const one = { shape, path: r.which, rows: r.rows, columns: n, tokens: r.tokens, hessianSeconds: r.hessianSeconds, pruneSeconds: r.pruneSeconds, hessianGflops: flops[0] / r.hessianSeconds / 1e9, pruneGflops: flops[1] / r.pruneSeconds / 1e9, peakOverHessian: (r.peakRss - r.rssBefore) / r.hessianBytes, workingOverHessian: (r.peakRss - r.rssBefore - r.outputBytes) / r.hessianBytes, error: r.error, sparsity: r.sparsity };
        rowsOut.push(one);
        if (!json) console.log(`\n${shape} (${r.which} only): W ${r.rows}×${n}, ${r.tokens} tokens, H ${fmt(r.hessianBytes / 2 ** 20, 0)} MB: Hessian ${fmt(one.hessianSeconds)} s (${fmt(one.hessianGflops, 1)} GFLOP/s)  prune ${fmt(one.pruneSeconds)} s (${fmt(one.pruneGflops, 1)} GFLOP/s)  peak ${fmt(one.peakOverHessian)}× H (working ${fmt(one.workingOverHessian)}× H)  loss ${r.error.toExponential(4)}`);
      }
      continue;
    }
    const f = res.fast, b = res.reference;
    const mf = fs.readFileSync(path.join(tmp, `${shape}-fast.json.mask`)), mb = fs.readFileSync(path.join(tmp, `${shape}-reference.json.mask`));
    let maskDiffs = 0;
    for (let i = 0; i < mf.length; i++) maskDiffs += mf[i] !== mb[i] ? 1 : 0;
    const masksEqual = maskDiffs === 0;
    const wf = new Float32Array(fs.readFileSync(path.join(tmp, `${shape}-fast.json.w`)).buffer.slice(0));
    const wb = new Float32Array(fs.readFileSync(path.join(tmp, `${shape}-reference.json.w`)).buffer.slice(0));
    let dmax = 0, wmax = 0;
    for (let i = 0; i < wf.length; i++) {
      dmax = Math.max(dmax, Math.abs(wf[i] - wb[i]));
      wmax = Math.max(wmax, Math.abs(wb[i]));
    }
    const n = f.cols, kTok = f.tokens, m = f.rows;
    // Executed flops: SYRK n²k vs GEMM 2n²k; factor 2n³/3 vs 4n³/3 (+ the loop's rows·n² GEMM, both).
    const flops = {
      hessFast: n * n * kTok, hessRef: 2 * n * n * kTok,
      pruneFast: (2 * n ** 3) / 3 + m * n * n, pruneRef: (4 * n ** 3) / 3 + m * n * n,
    };
    const row = {
      shape, rows: m, columns: n, tokens: kTok,
      fast: { hessianSeconds: f.hessianSeconds, pruneSeconds: f.pruneSeconds, hessianGflops: flops.hessFast / f.hessianSeconds / 1e9, pruneGflops: flops.pruneFast / f.pruneSeconds / 1e9, peakOverHessian: (f.peakRss - f.rssBefore) / f.hessianBytes, workingOverHessian: (f.peakRss - f.rssBefore - f.outputBytes) / f.hessianBytes, hessianCpuSeconds: f.hessianCpuSeconds, pruneCpuSeconds: f.pruneCpuSeconds },
      reference: { hessianSeconds: b.hessianSeconds, pruneSeconds: b.pruneSeconds, unfoldSecondsExcluded: b.unfoldSeconds, hessianGflops: flops.hessRef / b.hessianSeconds / 1e9, pruneGflops: flops.pruneRef / b.pruneSeconds / 1e9, peakOverHessian: (b.peakRss - b.rssBefore) / b.hessianBytes, workingOverHessian: (b.peakRss - b.rssBefore - b.outputBytes) / b.hessianBytes, hessianCpuSeconds: b.hessianCpuSeconds, pruneCpuSeconds: b.pruneCpuSeconds },
      speedup: { hessian: b.hessianSeconds / f.hessianSeconds, prune: b.pruneSeconds / f.pruneSeconds, total: (b.hessianSeconds + b.pruneSeconds) / (f.hessianSeconds + f.pruneSeconds) },
      speedupCpu: { hessian: b.hessianCpuSeconds / f.hessianCpuSeconds, prune: b.pruneCpuSeconds / f.pruneCpuSeconds, total: (b.hessianCpuSeconds + b.pruneCpuSeconds) / (f.hessianCpuSeconds + f.pruneCpuSeconds) },
      masksEqual, maskDiffs, lossFast: f.error, lossReference: b.error, maxWeightDiffRel: dmax / wmax, sparsity: f.sparsity, hessianMB: f.hessianBytes / 2 ** 20,
    };
    if (res.torch) row.torch = torchVsFast(res.torch, f, tmp, shape, json);
    rowsOut.push(row);
    if (!json) {
      console.log(`\n${shape}: W ${m}×${n}, ${kTok} tokens, H ${fmt(row.hessianMB, 0)} MB`);
      for (const [name, r] of [['this package', row.fast], ['reference (3 factorizations, GEMM Hessian)', row.reference]])
        console.log(`  ${name.padEnd(44)} Hessian ${fmt(r.hessianSeconds)} s (${fmt(r.hessianGflops, 1)} GFLOP/s)  prune ${fmt(r.pruneSeconds)} s (${fmt(r.pruneGflops, 1)} GFLOP/s)  CPU ${fmt(r.hessianCpuSeconds)} + ${fmt(r.pruneCpuSeconds)} s  peak ${fmt(r.peakOverHessian)}× H, working ${fmt(r.workingOverHessian)}× H`);
      console.log(`  speed-up (CPU time): Hessian ${fmt(row.speedupCpu.hessian)}×, prune ${fmt(row.speedupCpu.prune)}×, total ${fmt(row.speedupCpu.total)}×`);
      console.log(`  speed-up: Hessian ${fmt(row.speedup.hessian)}×, prune ${fmt(row.speedup.prune)}×, total ${fmt(row.speedup.total)}×; masks ${masksEqual ? 'identical' : `differ in ${maskDiffs} of ${mf.length}`}; max |ΔW|/max|W| ${dmax / wmax < 1e-3 ? (dmax / wmax).toExponential(1) : fmt(dmax / wmax, 4)}; layer loss ${f.error.toExponential(4)} vs ${b.error.toExponential(4)}`);
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  if (json) console.log(JSON.stringify({ ...info, shapes: rowsOut }, null, 2));
}

if (process.argv[2] === '--child') await child();
else await main();
