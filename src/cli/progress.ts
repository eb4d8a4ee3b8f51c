/**
 * A progress bar on stderr when it is a TTY (and nothing otherwise, so logs and pipes stay clean).
 * Redraws at most ~10 times a second.
 */
import type { ProgressCallback } from '../native.js';

export interface ProgressBar {
  update: ProgressCallback;
  done(message?: string): void;
}

export function createProgressBar(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  const enabled = Boolean(stream.isTTY) && !process.env.CI;
  const start = Date.now();
  let last = 0;
  let drawn = false;
  const width = 28;
  return {
    update(done: number, total: number) {
      if (!enabled) return;
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      const filled = Math.round(frac * width);
      const elapsed = (now - start) / 1000;
      const eta = frac > 0.01 ? (elapsed / frac) * (1 - frac) : NaN;
      const etaText = Number.isFinite(eta) ? ` eta ${eta.toFixed(0)}s` : '';
      stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(1).padStart(5)}%${etaText}   `);
      drawn = true;
    },
    done(message?: string) {
      if (enabled && drawn) stream.write('\r\x1b[2K');
      if (message) stream.write(`${message}\n`);
    },
  };
}
