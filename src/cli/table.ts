/** Aligned plain-text tables for CLI output (release-note style). Numbers are right-aligned. */
export type Cell = string | number | null | undefined;

export interface TableOptions {
  /** Column alignment; default: numbers right, text left. */
  align?: ('left' | 'right')[];
}

function cellText(c: Cell): string {
  if (c === null || c === undefined) return '';
  return String(c);
}

export function formatTable(header: string[], rows: Cell[][], options: TableOptions = {}): string {
  const texts = rows.map((r) => header.map((_, i) => cellText(r[i])));
  const widths = header.map((h, i) => Math.max(h.length, ...texts.map((r) => r[i]!.length)));
  const align = header.map((_, i) => options.align?.[i] ?? (rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || r[i] === null || r[i] === undefined) ? 'right' : 'left'));
  const line = (cells: string[]) =>
    cells.map((c, i) => (align[i] === 'right' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of texts) out.push(line(r));
  return out.join('\n');
}

/** 1536 → "1.5 KiB"; decimal GB for model sizes is available via formatGB. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}

/** Decimal gigabytes, as model sizes are usually published (4.8 GB UNet). */
export function formatGB(n: number, digits = 2): string {
  return `${(n / 1e9).toFixed(digits)} GB`;
}

export function formatSeconds(s: number): string {
  if (s < 1) return `${(s * 1000).toFixed(0)} ms`;
  if (s < 120) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}
