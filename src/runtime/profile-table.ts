/** Renders an executor profile (predict `profile: true`) as the `predict --profile` table. */
import { formatBytes, formatTable } from '../cli/table.js';
import type { ExecutorProfile } from './executor.js';

/** Rows: op type, calls, total ms, % of the run, GFLOP/s (GEMM-like ops only), bytes moved; then a total line. */
export function formatProfile(profile: ExecutorProfile): string {
  const total = profile.totalMs > 0 ? profile.totalMs : profile.ops.reduce((a, r) => a + r.ms, 0);
  const rows = profile.ops.map((r) => [
    r.type,
    r.calls,
    r.ms.toFixed(3),
    total > 0 ? ((100 * r.ms) / total).toFixed(1) : '0.0',
    r.flops > 0 && r.ms > 0 ? (r.flops / (r.ms * 1e6)).toFixed(1) : '',
    formatBytes(r.bytes),
  ]);
  const flops = profile.ops.reduce((a, r) => a + r.flops, 0);
  const bytes = profile.ops.reduce((a, r) => a + r.bytes, 0);
  const calls = profile.ops.reduce((a, r) => a + r.calls, 0);
  rows.push(['total', calls, total.toFixed(3), '100.0', flops > 0 && total > 0 ? (flops / (total * 1e6)).toFixed(1) : '', formatBytes(bytes)]);
  return formatTable(['op type', 'calls', 'ms', '%', 'GFLOP/s', 'bytes'], rows, {
    align: ['left', 'right', 'right', 'right', 'right', 'right'],
  });
}
