// The CPU executor on the three executor-reference networks (and the SD-style block stack of
// bench/executor-sd.mjs), at 1 and 2 threads: median of N warm runs and peak RSS, each case in its own
// process; the executor's GEMM peak measured in the same run; and PyTorch's time on the same cases and
// inputs when `import torch` works (bench/executor_torch.py; the column is skipped otherwise).
// Figures are printed, never asserted. Build first: `npx tsc -p tsconfig.build.json`.
//   node bench/executor.mjs [--runs 10] [--threads 1,2] [--no-sd] [--no-torch] [case ...]
// COREML_OPTIMIZE_ADDON=build-portable/Release/coreml_optimize.node runs another build (see src/native.ts).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist', 'index.js');
if (!existsSync(dist)) {
  console.error('bench/executor.mjs needs the compiled package: run `npx tsc -p tsconfig.build.json` first');
  process.exit(1);
}
const root = path.join(here, '..', '..', 'shared', 'fixtures', 'executor-reference');
const args = process.argv.slice(2);
const take = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const flag = (name) => {
  const i = args.indexOf(name);
  if (i >= 0) args.splice(i, 1);
  return i >= 0;
};

const peakRssMiB = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) / 1024;

// Worker: one case at one thread count in this process; prints a JSON line.
if (args[0] === '--worker') {
  const [, name, threadsText, runsText] = args;
  const { createExecutor, loadModelSync, readNpy, setThreads } = await import(dist);
  setThreads(Number(threadsText));
  const dir = path.join(root, name);
  const exec = createExecutor(loadModelSync(path.join(dir, 'model.mlpackage')));
  const inputs = {};
  for (const input of exec.inputs.map((i) => i.name)) {
    const a = readNpy(path.join(dir, 'inputs', `${input}.npy`));
    inputs[input] = { data: a.data, shape: a.shape };
  }
  for (let i = 0; i < 3; i++) await exec.predict(inputs); // warm-up: buffers pooled, weights mapped
  const times = [], cpu = [];
  for (let r = 0; r < Number(runsText); r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await exec.predict(inputs);
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  times.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  console.log(JSON.stringify({ median: times[times.length >> 1], min: times[0], cpu: cpu[cpu.length >> 1], rss: peakRssMiB() }));
  process.exit(0);
}

const runs = Number(take('--runs', '10'));
const threadList = take('--threads', '1,2').split(',').map(Number);
const withSd = !flag('--no-sd');
const withTorch = !flag('--no-torch');
const cases = args.length ? args : ['net_sd_unet_block', 'net_clip_text_encoder', 'net_vae_decoder_block'];

function python() {
  for (const py of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(py, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return { py, version: r.stdout.trim() };
  }
  return null;
}
const torch = withTorch ? python() : null;

const { nativeAddon, setThreads } = await import(path.join(here, '..', 'dist', 'native.js'));
const info = nativeAddon().buildInfo();
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`executor benchmark: ${info.blas} build (${info.blasDetail}); executor GEMM: ${info.executorGemm}; ${os.cpus().length} cores, load ${load()}`);
console.log(`median of ${runs} warm runs per case, each case in its own process${torch ? `; PyTorch ${torch.version} (${torch.py})` : '; PyTorch not found (no torch column)'}\n`);

const rows = [];
for (const threads of threadList) {
  setThreads(threads);
  const peak = await nativeAddon().gemmBenchmark({ m: 1024, n: 1024, k: 1024, repeats: 5, threads });
  let torchTimes = {};
  if (torch) {
    const r = spawnSync(torch.py, [path.join(here, 'executor_torch.py'), root, String(threads), String(runs), ...cases], { encoding: 'utf8' });
    if (r.status === 0) torchTimes = JSON.parse(r.stdout.trim().split('\n').pop());
    else console.error(`executor_torch.py failed: ${r.stderr.trim().split('\n').pop()}`);
  }
  for (const name of cases) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--worker', name, String(threads), String(runs)], { encoding: 'utf8', env: process.env });
    if (r.status !== 0) {
      console.error(`${name}: ${r.stderr.trim().split('\n').pop()}`);
      continue;
    }
    const m = JSON.parse(r.stdout.trim().split('\n').pop());
    const t = torchTimes[name]?.median_ms;
    rows.push({ case: name, threads, ms: m.median, min: m.min, cpu: m.cpu, rss: m.rss, peak: peak.gflops, torch: t, torchCpu: torchTimes[name]?.cpu_ms });
  }
  if (withSd) {
    const r = spawnSync(process.execPath, [path.join(here, 'executor-sd.mjs'), '--threads', String(threads), '--runs', '3'], { encoding: 'utf8', env: process.env });
    const med = /median ([\d.]+) ms/.exec(r.stdout)?.[1];
    const rss = /peak RSS: (\d+) MiB/.exec(r.stdout)?.[1];
    if (med) rows.push({ case: 'SD block stack (2 blocks, 32x32)', threads, ms: Number(med), min: NaN, cpu: NaN, rss: Number(rss), peak: peak.gflops, torch: undefined });
  }
}

const pad = (s, n, right = true) => (right ? String(s).padStart(n) : String(s).padEnd(n));
const num = (v, d = 2) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d));
// "CPU ms": user + system CPU time per run (median); on a loaded machine it tracks the work done
// better than wall time, which includes the time other processes held the cores.
console.log(`${pad('case', 34, false)} ${pad('threads', 7)} ${pad('ours ms', 9)} ${pad('min ms', 8)} ${pad('CPU ms', 8)} ${pad('RSS MiB', 8)} ${pad('GEMM GF/s', 9)}${torch ? ` ${pad('torch ms', 9)} ${pad('torch CPU', 9)} ${pad('ours/torch', 10)}` : ''}`);
for (const r of rows) {
  const tcol = torch ? ` ${pad(num(r.torch), 9)} ${pad(num(r.torchCpu), 9)} ${pad(r.torch === undefined ? '-' : `${(r.ms / r.torch).toFixed(2)}x`, 10)}` : '';
  console.log(`${pad(r.case, 34, false)} ${pad(r.threads, 7)} ${pad(num(r.ms), 9)} ${pad(num(r.min), 8)} ${pad(num(r.cpu), 8)} ${pad(num(r.rss, 0), 8)} ${pad(num(r.peak, 1), 9)}${tcol}`);
}
console.log(`\nload at the end: ${load()} (a shared machine inflates every figure; compare columns of one run only)`);
