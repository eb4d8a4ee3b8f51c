/** report.md: the study as a Markdown table (Config | Model size | image PSNR | UNet PSNR | time, then SSIM and peak memory). */
import type { StudyReport, VariantResult } from './types.js';

export function formatSize(bytes: number): string {
  if (bytes >= 0.1 * 1e9) return `${(bytes / 1e9).toFixed(3)} GB (${(bytes / 2 ** 30).toFixed(3)} GiB)`;
  return `${(bytes / 1e6).toFixed(3)} MB (${(bytes / 2 ** 20).toFixed(3)} MiB)`;
}

export const formatDb = (db: number | null): string => (db === null ? '∞ (identical)' : `${db.toFixed(2)} dB`);

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - 60 * m)} s`;
}

export const formatMemory = (v: VariantResult): string => (v.memory ? `${(v.memory.peakRssBytes / 2 ** 20).toFixed(0)} MiB${v.memory.method === 'inline' ? ' (in-process, upper bound)' : ''}` : '—');

const cell = (s: string): string => s.replace(/\|/g, '\\|');

export function renderMarkdown(report: StudyReport): string {
  const lines: string[] = [];
  lines.push(`# Compression study${report.preset ? ` (${report.preset})` : ''}`);
  lines.push('');
  lines.push(`Pipeline \`${report.pipeline}\` (${report.modelKind}), ${report.scheduler}, ${report.steps} steps, guidance ${report.guidance}, ${report.backend}; ` +
    `prompt${report.prompts.length > 1 ? 's' : ''} ${report.prompts.map((p) => `"${p}"`).join(', ')}, seed${report.seeds.length > 1 ? 's' : ''} ${report.seeds.join(', ')}.`);
  lines.push(`Image PSNR / SSIM: against the uncompressed pipeline's image (8-bit RGB; SSIM on luma, 11×11 Gaussian σ 1.5). ` +
    `UNet PSNR: the UNet output on ${report.unetInputs.samples} recorded inputs (peak = max |reference|).` +
    (report.calibration ? ` SparseGPT calibration: ${report.calibration.samples} recorded UNet inputs.` : ''));
  if (report.ios18Unet) {
    lines.push(`The pipeline's UNet targets iOS16/17; variants that need iOS18 (joint compression, per_grouped_channel) compressed an iOS18 copy of it (\`${report.ios18Unet}\`: the same ops and weights, specification version 9).`);
  }
  lines.push('');
  const published = report.publishedGib;
  const header = ['Config', 'Model size', 'image PSNR', 'UNet PSNR', 'time', 'SSIM', 'peak memory', ...(published ? ['Apple (GiB)'] : [])];
  lines.push(`| ${header.join(' | ')} |`);
  lines.push(`|${header.map(() => '---').join('|')}|`);
  for (const v of [report.baseline, ...report.variants]) {
    const row = [
      v === report.baseline ? 'baseline (uncompressed)' : v.label,
      formatSize(v.size.weightFileBytes),
      formatDb(v.imagePsnr),
      formatDb(v.unet.psnr),
      v === report.baseline ? '—' : formatDuration(v.compressionSeconds),
      v.imageSsim.toFixed(4),
      v === report.baseline ? '—' : formatMemory(v),
      ...(published ? [published[v.name] !== undefined ? published[v.name]!.toFixed(3) : ''] : []),
    ];
    lines.push(`| ${row.map(cell).join(' | ')} |`);
  }
  lines.push('');
  lines.push('Files: `report.json` (every figure), `report.html` (sortable table with thumbnails and the plot), `grid.png`, `plot.svg`, `variants/<name>/` (images, result.json).');
  return `${lines.join('\n')}\n`;
}
