/**
 * Size vs image PSNR as a small standalone SVG (plot.svg, and inline in report.html): one labelled
 * point per variant; the baseline (identical to itself, PSNR ∞) is a dashed vertical line at its size.
 * Variants whose image equals the baseline's are drawn on the top edge with "∞".
 */
import type { StudyReport } from './types.js';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function niceTicks(lo: number, hi: number, count = 5): number[] {
  const span = hi - lo || 1;
  const step0 = span / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Size axis unit: GiB for ≥ 0.1 GiB models, else MiB. */
function sizeUnit(maxBytes: number): { unit: string; div: number } {
  return maxBytes >= 0.1 * 2 ** 30 ? { unit: 'GiB', div: 2 ** 30 } : { unit: 'MiB', div: 2 ** 20 };
}

export function renderPlotSvg(report: StudyReport, width = 640, height = 400): string {
  const pts = report.variants.map((v) => ({ name: v.name, x: v.size.weightFileBytes, y: v.imagePsnr }));
  const { unit, div } = sizeUnit(Math.max(report.baseline.size.weightFileBytes, ...pts.map((p) => p.x)));
  const xs = [...pts.map((p) => p.x / div), report.baseline.size.weightFileBytes / div];
  const finite = pts.map((p) => p.y).filter((y): y is number => y !== null);
  const xLo = 0, xHi = Math.max(...xs) * 1.08;
  const yLo = finite.length ? Math.floor(Math.min(...finite) / 5) * 5 : 0;
  const yHi = finite.length ? Math.ceil((Math.max(...finite) + 1) / 5) * 5 : 50;
  const m = { l: 56, r: 16, t: 28, b: 44 };
  const W = width - m.l - m.r, H = height - m.t - m.b;
  const sx = (x: number) => m.l + ((x - xLo) / (xHi - xLo)) * W;
  const sy = (y: number | null) => (y === null ? m.t : m.t + H - ((y - yLo) / (yHi - yLo || 1)) * H);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11" role="img" aria-label="UNet size vs image PSNR">`);
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="${width / 2}" y="16" text-anchor="middle" font-size="13">UNet weight size vs image PSNR against the uncompressed model</text>`);
  for (const t of niceTicks(xLo, xHi)) {
    parts.push(`<line x1="${sx(t)}" y1="${m.t}" x2="${sx(t)}" y2="${m.t + H}" stroke="#eee"/><text x="${sx(t)}" y="${m.t + H + 14}" text-anchor="middle">${t}</text>`);
  }
  for (const t of niceTicks(yLo, yHi)) {
    parts.push(`<line x1="${m.l}" y1="${sy(t)}" x2="${m.l + W}" y2="${sy(t)}" stroke="#eee"/><text x="${m.l - 6}" y="${sy(t) + 4}" text-anchor="end">${t}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W}" height="${H}" fill="none" stroke="#888"/>`);
  parts.push(`<text x="${m.l + W / 2}" y="${height - 8}" text-anchor="middle">UNet weight file (${unit})</text>`);
  parts.push(`<text transform="translate(14 ${m.t + H / 2}) rotate(-90)" text-anchor="middle">image PSNR (dB)</text>`);
  const bx = sx(report.baseline.size.weightFileBytes / div);
  parts.push(`<line x1="${bx}" y1="${m.t}" x2="${bx}" y2="${m.t + H}" stroke="#c33" stroke-dasharray="4 3"/><text x="${bx - 4}" y="${m.t + 12}" text-anchor="end" fill="#c33">baseline</text>`);
  // Labels: placed top to bottom, each moved down until it clears those placed before (clustered
  // points, e.g. the 4-bit group sizes, would print on top of each other); a thin line joins a moved label.
  const placed: { x0: number; x1: number; y: number }[] = [];
  const order = pts.map((p) => ({ p, x: sx(p.x / div), y: sy(p.y) })).sort((a, b) => a.y - b.y || a.x - b.x);
  for (const { p, x, y } of order) {
    const text = `${p.name}${p.y === null ? ' (∞)' : ''}`;
    const x0 = x + 6, x1 = x0 + 6.2 * text.length;
    let ly = y - 6;
    while (placed.some((b) => b.x0 < x1 && x0 < b.x1 && Math.abs(b.y - ly) < 12)) ly += 12;
    placed.push({ x0, x1, y: ly });
    const leader = ly > y - 6 ? `<line x1="${x.toFixed(1)}" y1="${y.toFixed(1)}" x2="${x0.toFixed(1)}" y2="${(ly - 4).toFixed(1)}" stroke="#9ab"/>` : '';
    parts.push(`<g class="point" data-name="${esc(p.name)}"><circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="4" fill="#1f6feb"/>${leader}<text x="${x0.toFixed(1)}" y="${ly.toFixed(1)}">${esc(text)}</text></g>`);
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
