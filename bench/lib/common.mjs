/**
 * Shared helpers for the benchmarks: argument parsing, memory readings, child processes (so each
 * measured phase has its own peak RSS), formatting. Benchmarks print figures; they assert nothing.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const REPO_ROOT = path.dirname(BENCH_DIR);
/** Layer-shape lists of real UNets (read-only reference data, never copied into the repo). */
export const MODELS_DIR = path.resolve(REPO_ROOT, '..', 'shared', 'models');
export const DEFAULT_WORK_DIR = '/tmp/coreml-optimize-bench';

/** `--key value`, `--key=value` and bare `--flag` (true). Positional arguments go to `_`. */
export function parseArgs(argv = process.argv.slice(2)) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) { out._.push(a); continue; }
    const eq = a.indexOf('=');
    if (eq > 0) { out[a.slice(2, eq)] = a.slice(eq + 1); continue; }
    const key = a.slice(2);
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) { out[key] = next; i++; } else out[key] = true;
  }
  return out;
}

/** Fields of /proc/self/status in bytes (Linux); falls back to resourceUsage elsewhere. */
export function memoryStatus() {
  try {
    const text = fs.readFileSync('/proc/self/status', 'utf8');
    const kb = (key) => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') };
  } catch {
    const maxRss = process.resourceUsage().maxRSS * 1024;
    return { rss: process.memoryUsage().rss, hwm: maxRss, anon: undefined, file: undefined };
  }
}

/** Tracks the maximum anonymous and file-backed RSS seen at the points where sample() is called. */
export class RssSampler {
  constructor() { this.maxAnon = 0; this.maxFile = 0; this.maxRss = 0; this.sample(); }
  sample() {
    const m = memoryStatus();
    this.maxRss = Math.max(this.maxRss, m.rss ?? 0);
    this.maxAnon = Math.max(this.maxAnon, m.anon ?? 0);
    this.maxFile = Math.max(this.maxFile, m.file ?? 0);
  }
  /** Samples on a timer too (native jobs run off the JS thread; the event loop stays free). */
  every(ms) { this.timer = setInterval(() => this.sample(), ms); this.timer.unref(); return this; }
  stop() { if (this.timer) clearInterval(this.timer); this.sample(); return { peakHwm: memoryStatus().hwm, maxAnon: this.maxAnon, maxFile: this.maxFile, maxRss: this.maxRss }; }
}

export const GB = 1e9;
export const GiB = 2 ** 30;
export const MiB = 2 ** 20;
export const fmtGB = (b) => `${(b / GB).toFixed(2)} GB`;
export const fmtMiB = (b) => (b === undefined ? 'n/a' : `${(b / MiB).toFixed(0)} MiB`);
export const fmtSec = (s) => `${s.toFixed(s < 10 ? 2 : 1)} s`;
export const now = () => performance.now() / 1000;

/**
 * Runs `node <script> <args>` and resolves with the last stdout line that parses as JSON (the
 * child's result); other output is passed through to stderr so progress stays visible.
 */
export function runChild(script, args, { nodeArgs = [], env = process.env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env });
    let stdout = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const lines = stdout.trim().split('\n');
      for (const l of lines) if (!l.startsWith('{')) process.stderr.write(`${l}\n`);
      const json = lines.reverse().find((l) => l.startsWith('{'));
      if (code !== 0 || !json) return reject(new Error(`${path.basename(script)} ${args.join(' ')} exited with ${signal ?? code}`));
      resolve(JSON.parse(json));
    });
  });
}

/** Prints rows as an aligned text table. */
export function printTable(headers, rows, log = console.log) {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  log(line(headers));
  log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of cells.slice(1)) log(line(r));
}

/** Deterministic 32-bit seed from a tensor name (FNV-1a), so a subset model gets the same weights. */
export function seedOf(name) {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) { h ^= name.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
  return h;
}

/** CPU count, memory and load average: figures from a shared machine mean little without them. */
export function machineLine() {
  const [l1, l5] = os.loadavg();
  return `${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / GiB).toFixed(0)} GiB RAM, load average ${l1.toFixed(1)} / ${l5.toFixed(1)} (1 / 5 min), Node ${process.versions.node}`;
}
