/**
 * report.html: one self-contained file — the table with thumbnails as data: URIs, sortable by clicking a
 * header (a few lines of inline JS; numbers sort numerically, ∞ above everything), and the size-vs-PSNR
 * plot as inline SVG. The inline script also marks each image with data-loaded="true|false" once the page
 * has loaded (img.complete && naturalWidth > 0), and <body data-images-loaded="N/M">, so a headless
 * browser test can check that every image decoded.
 */
import { formatDb, formatDuration, formatMemory, formatSize } from './report-md.js';
import type { StudyReport, VariantResult } from './types.js';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export interface HtmlInputs {
  /** PNG bytes of each row's thumbnail (first prompt / seed), by variant name ('baseline' included). */
  thumbnails: Record<string, Uint8Array>;
  plotSvg: string;
}

const SCRIPT = `
(function () {
  function key(td) {
    var v = td.getAttribute('data-sort');
    if (v === null) return td.textContent.trim().toLowerCase();
    return v === 'inf' ? Infinity : Number(v);
  }
  document.querySelectorAll('table.study th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var tbody = th.closest('table').querySelector('tbody');
      var asc = th.getAttribute('data-dir') !== 'asc';
      th.parentNode.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-dir'); });
      th.setAttribute('data-dir', asc ? 'asc' : 'desc');
      var rows = Array.prototype.slice.call(tbody.rows);
      rows.sort(function (a, b) {
        var x = key(a.cells[col]), y = key(b.cells[col]);
        var r = x < y ? -1 : x > y ? 1 : 0;
        return asc ? r : -r;
      });
      rows.forEach(function (r) { tbody.appendChild(r); });
    });
  });
  function mark() {
    var imgs = document.querySelectorAll('img');
    var ok = 0;
    imgs.forEach(function (img) {
      var loaded = img.complete && img.naturalWidth > 0;
      img.setAttribute('data-loaded', loaded ? 'true' : 'false');
      if (loaded) ok++;
    });
    document.body.setAttribute('data-images-loaded', ok + '/' + imgs.length);
  }
  if (document.readyState === 'complete') mark(); else window.addEventListener('load', mark);
})();
`;

const CSS = `
body { font-family: -apple-system, system-ui, sans-serif; margin: 24px; color: #222; }
table.study { border-collapse: collapse; }
table.study th, table.study td { border: 1px solid #ddd; padding: 6px 10px; text-align: right; vertical-align: middle; }
table.study td.name, table.study th.name { text-align: left; }
table.study th { cursor: pointer; background: #f4f4f4; user-select: none; }
table.study th[data-dir=asc]::after { content: ' \\25B2'; }
table.study th[data-dir=desc]::after { content: ' \\25BC'; }
table.study img { width: 128px; height: auto; image-rendering: auto; display: block; }
tr.baseline td { background: #fafaf0; }
.note { color: #666; font-size: 13px; max-width: 60em; }
`;

function sortValue(db: number | null): string {
  return db === null ? 'inf' : String(db);
}

function row(v: VariantResult, isBaseline: boolean, thumb: Uint8Array | undefined, published: Record<string, number> | undefined): string {
  const img = thumb ? `<img alt="${esc(v.name)}" src="data:image/png;base64,${Buffer.from(thumb).toString('base64')}">` : '';
  const cells = [
    `<td class="name" data-sort="${isBaseline ? '' : esc(v.label.toLowerCase())}">${esc(isBaseline ? 'baseline (uncompressed)' : v.label)}<br><small>${esc(v.name)}</small></td>`,
    `<td data-sort="${v.size.weightFileBytes}">${esc(formatSize(v.size.weightFileBytes))}</td>`,
    `<td data-sort="${sortValue(v.imagePsnr)}">${esc(formatDb(v.imagePsnr))}</td>`,
    `<td data-sort="${sortValue(v.unet.psnr)}">${esc(formatDb(v.unet.psnr))}</td>`,
    `<td data-sort="${isBaseline ? 0 : v.compressionSeconds}">${isBaseline ? '—' : esc(formatDuration(v.compressionSeconds))}</td>`,
    `<td data-sort="${v.imageSsim}">${v.imageSsim.toFixed(4)}</td>`,
    `<td data-sort="${v.memory?.peakRssBytes ?? 0}">${isBaseline ? '—' : esc(formatMemory(v))}</td>`,
    ...(published ? [`<td data-sort="${published[v.name] ?? 0}">${published[v.name] !== undefined ? published[v.name]!.toFixed(3) : ''}</td>`] : []),
    `<td class="name" data-sort="0">${img}</td>`,
  ];
  return `<tr class="${isBaseline ? 'baseline' : 'variant'}" data-name="${esc(v.name)}">${cells.join('')}</tr>`;
}

export function renderHtml(report: StudyReport, inputs: HtmlInputs): string {
  const published = report.publishedGib;
  const headers = ['Config', 'Model size', 'image PSNR', 'UNet PSNR', 'time', 'SSIM', 'peak memory', ...(published ? ['Apple (GiB)'] : []), 'image'];
  const head = headers.map((h, i) => `<th class="${i === 0 || i === headers.length - 1 ? 'name' : ''}">${esc(h)}</th>`).join('');
  const rows = [row(report.baseline, true, inputs.thumbnails['baseline'], published), ...report.variants.map((v) => row(v, false, inputs.thumbnails[v.name], published))];
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Compression study${report.preset ? ` — ${esc(report.preset)}` : ''}</title>
<style>${CSS}</style>
</head>
<body>
<h1>Compression study${report.preset ? ` <small>(${esc(report.preset)})</small>` : ''}</h1>
<p class="note">Pipeline <code>${esc(report.pipeline)}</code> (${esc(report.modelKind)}), ${esc(report.scheduler)}, ${report.steps} steps, guidance ${report.guidance}, ${esc(report.backend)};
prompt ${report.prompts.map((p) => `“${esc(p)}”`).join(', ')}, seed ${report.seeds.join(', ')}.
Image PSNR / SSIM against the uncompressed pipeline's image; UNet PSNR on ${report.unetInputs.samples} recorded UNet inputs. Click a column header to sort.</p>
<table class="study">
<thead><tr>${head}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
<h2>Size vs image PSNR</h2>
${inputs.plotSvg}
<script>${SCRIPT}</script>
</body>
</html>
`;
}
