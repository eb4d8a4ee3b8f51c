/**
 * The study end to end on the tiny pipelines of ../shared/fixtures/pipeline-reference (converted at fp16):
 * - the coremltools-sdxl preset on tiny-sdxl (2 steps; SparseGPT calibrated on the three prompts' UNet
 *   inputs): every variant reported, sizes = the files on disk, the baseline identical to itself, the
 *   reports and grid written; the HTML opened in headless Chromium (DOM: one row per variant, every image
 *   decoded; a screenshot kept in the study folder);
 * - a 8 / 4 / 2-bit study on tiny-sd15: image PSNR ordered 8 > 4 > 2; cancelled after the first variant,
 *   then resumed: nothing finished is redone (result.json untouched, compressions counted) and the report
 *   equals an uninterrupted run's (times and memory aside);
 * - the CLI (--preset with --pipeline / --steps, --resume, --json) and process isolation (when the CLI is built).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertDiffusers } from '../../src/convert/convert.js';
import { AbortError } from '../../src/errors.js';
import { loadModel } from '../../src/model.js';
import { compareModels } from '../../src/runtime/compare.js';
import { decodePng } from '../../src/pipeline/png.js';
import { parseStudyConfig } from '../../src/study/config.js';
import { presetData } from '../../src/study/presets.js';
import { runStudy, type StudyProgress } from '../../src/study/run.js';
import type { StudyReport, VariantResult } from '../../src/study/types.js';
import { runCli } from '../cli/run-cli.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REF = path.resolve(HERE, '../../../shared/fixtures/pipeline-reference');
const REPO = path.resolve(HERE, '../..');
const hasFixtures = fs.existsSync(path.join(REF, 'models'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'study-e2e-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const WEIGHTS = path.join('Data', 'com.apple.CoreML', 'weights', 'weight.bin');
const pal = (nbits: number) => ({ steps: [{ api: 'palettize', config: { config_type: 'OpPalettizerConfig', global_config: { nbits, granularity: 'per_tensor' } } }] });

/** Report fields that depend on the machine's speed and load, not on the study. */
function stable(r: StudyReport): unknown {
  const strip = (v: VariantResult) => ({ ...v, compressionSeconds: 0, generateSeconds: 0, memory: null });
  return { ...r, baseline: strip(r.baseline), variants: r.variants.map(strip) };
}

function chromium(): string | undefined {
  for (const c of ['chromium', 'chromium-browser']) {
    const r = spawnSync('which', [c], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return undefined;
}

describe.skipIf(!hasFixtures)('compression study (tiny pipelines)', () => {
  const pipelines: Record<string, string> = {};
  let fullReport: StudyReport;
  // Generous limits: these take ~10-40 s of CPU each, more on a shared machine.
  beforeAll(async () => {
    for (const k of ['sdxl', 'sd15']) {
      pipelines[k] = path.join(tmp, `tiny-${k}`);
      await convertDiffusers(path.join(REF, 'models', `tiny-${k}`), { outDir: pipelines[k]!, precision: 'fp16' });
    }
  }, 300_000);

  describe('coremltools-sdxl preset on tiny-sdxl', () => {
    const out = path.join(tmp, 'sdxl-preset');
    let report: StudyReport;
    const events: StudyProgress[] = [];

    it('runs end to end: ten variants, sizes = files on disk, baseline identical to itself', async () => {
      const config = parseStudyConfig({ pipeline: pipelines['sdxl'], steps: 2 }, { base: presetData('coremltools-sdxl') });
      const r = await runStudy(config, { outDir: out, isolation: 'inline', keepModels: true, onProgress: (p) => events.push(p) });
      report = r.report;
      expect(report.variants.map((v) => v.name)).toEqual([
        'palettize-8bit', 'palettize-6bit', 'palettize-4bit', 'palettize-4bit-gs4', 'palettize-4bit-gs16', 'palettize-4bit-gs32',
        'sparsegpt40-4bit-gs4', 'sparsegpt40-4bit-gs16', 'sparsegpt50-4bit-gs4', 'sparsegpt50-4bit-gs16',
      ]);
      expect(report.modelKind).toBe('sdxl');
      expect(report.prompts).toEqual(['cat in a tuxedo, oil on canvas']);
      expect(report.seeds).toEqual([231]);
      // Calibration: three prompts × 2 steps, one batch-2 UNet call each.
      expect(report.calibration?.samples).toBe(6);
      expect(fs.readdirSync(report.calibration!.dir).sort()).toEqual(['p0-0000', 'p0-0001', 'p1-0000', 'p1-0001', 'p2-0000', 'p2-0001']);
      const onDisk = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')) as StudyReport;
      expect(onDisk.baseline.size.weightFileBytes).toBe(fs.statSync(path.join(pipelines['sdxl']!, 'Unet.mlpackage', WEIGHTS)).size);
      for (const v of onDisk.variants) {
        const file = path.join(out, v.unetPath!, WEIGHTS);
        expect(v.size.weightFileBytes, v.name).toBe(fs.statSync(file).size);
        expect(v.size.gb).toBe(v.size.weightFileBytes / 1e9);
        expect(v.size.gib).toBe(v.size.weightFileBytes / 2 ** 30);
        expect(v.size.weightFileBytes).toBeLessThan(onDisk.baseline.size.weightFileBytes);
        expect(v.images).toHaveLength(1);
        expect(v.imagePsnr).not.toBeNull();
        expect(v.imageSsim).toBeLessThan(1);
        expect(v.unet.psnr).not.toBeNull();
        expect(v.memory?.method).toBe('inline');
      }
      // The baseline against itself (its images and a rerun of its UNet on the fixed inputs): identical.
      expect(onDisk.baseline.imagePsnr).toBeNull();
      expect(onDisk.baseline.images[0]!.psnr).toBeNull();
      expect(onDisk.baseline.imageSsim).toBe(1);
      expect(onDisk.baseline.unet.psnr).toBeNull();
      expect(onDisk.baseline.unet.maxAbsError).toBe(0);
      expect(onDisk.unetInputs.samples).toBe(2);
      // Sparsity shrinks the file below plain 4-bit palettization with the same group size.
      const size = (n: string) => onDisk.variants.find((v) => v.name === n)!.size.weightFileBytes;
      expect(size('sparsegpt50-4bit-gs16')).toBeLessThan(size('sparsegpt40-4bit-gs16'));
      expect(size('sparsegpt40-4bit-gs16')).toBeLessThan(size('palettize-4bit-gs16'));
      expect(size('palettize-8bit')).toBeGreaterThan(size('palettize-6bit'));
      expect(onDisk.publishedGib?.['palettize-8bit']).toBe(2.4);
      // The converted UNet is iOS16; joint / grouped variants ran on an iOS18 copy that computes the same.
      expect(onDisk.ios18Unet).toBe('baseline/Unet-ios18.mlpackage');
      const [plain, ios18] = await Promise.all([loadModel(path.join(pipelines['sdxl']!, 'Unet.mlpackage')), loadModel(path.join(out, onDisk.ios18Unet!))]);
      expect([plain.specificationVersion, ios18.specificationVersion]).toEqual([7, 9]);
      const same = await compareModels(plain, ios18, { random: 1, seed: 5 });
      expect(same.outputs.every((o) => o.identical)).toBe(true);
      // Progress: every variant reports its compression steps, generation and done.
      for (const v of report.variants) {
        const steps = new Set(events.filter((e) => e.variant === v.name).map((e) => e.step));
        expect([...steps]).toEqual(expect.arrayContaining(['compress-step', 'generate', 'unet', 'done']));
      }
    }, 600_000);

    it('writes report.md, grid.png (baseline + every variant) and plot.svg', () => {
      const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
      expect(md).toContain('| Config | Model size | image PSNR | UNet PSNR | time |');
      expect(md.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| Config'))).toHaveLength(11);
      expect(md).toContain('| baseline (uncompressed) |');
      expect(md).toContain('| 40% sparsity, 4-bit (group_size=16) |');
      const grid = decodePng(fs.readFileSync(path.join(out, 'grid.png')));
      expect(grid.width).toBeGreaterThan(4 * 128);
      expect(grid.height).toBeGreaterThan(3 * 128);
      const svg = fs.readFileSync(path.join(out, 'plot.svg'), 'utf8');
      expect(svg.match(/<g class="point"/g)).toHaveLength(10);
      expect(fs.readFileSync(path.join(out, 'report.html'), 'utf8')).toContain(svg.trim());
    });

    const browser = chromium();
    it.skipIf(!browser)('report.html in headless Chromium: one row per variant, every image decoded, screenshot kept', () => {
      const html = path.join(out, 'report.html');
      const profile = fs.mkdtempSync(path.join(tmp, 'chromium-'));
      const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`];
      const dom = execFileSync(browser!, [...flags, '--dump-dom', `file://${html}`], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'ignore'] });
      const rows = dom.match(/<tr class="variant"/g) ?? [];
      expect(rows).toHaveLength(10);
      expect(dom).toContain('<tr class="baseline"');
      const imgs = dom.match(/<img [^>]*>/g) ?? [];
      expect(imgs).toHaveLength(11);
      for (const img of imgs) expect(img).toContain('data-loaded="true"');
      expect(dom).toMatch(/data-images-loaded="11\/11"/);
      const shot = path.join(out, 'report-screenshot.png');
      execFileSync(browser!, [...flags, `--screenshot=${shot}`, '--window-size=1280,900', `file://${html}`], { timeout: 60_000, stdio: 'ignore' });
      const png = decodePng(fs.readFileSync(shot));
      expect([png.width, png.height]).toEqual([1280, 900]);
      // CI keeps the tiny study (report.md for the README's example, the HTML and its screenshot) where asked.
      const keep = process.env['COREML_OPTIMIZE_STUDY_EXAMPLE_DIR'];
      if (keep) {
        fs.mkdirSync(keep, { recursive: true });
        for (const f of ['report.md', 'report.json', 'report.html', 'grid.png', 'plot.svg', 'report-screenshot.png']) fs.copyFileSync(path.join(out, f), path.join(keep, f));
      }
    }, 300_000);
    if (!browser) it('report.html in headless Chromium', () => console.warn('skipped: no chromium on PATH (apt-get install -y --no-install-recommends chromium)'));
  });

  describe('8 / 4 / 2-bit on tiny-sd15: ordering, cancel and resume', () => {
    const config = () => parseStudyConfig({
      pipeline: pipelines['sd15'], prompt: 'cat in a tuxedo, oil on canvas', seed: 231, steps: 2, unetInputs: { count: 1 },
      variants: [{ name: 'pal8', label: '8-bit', plan: pal(8) }, { name: 'pal4', label: '4-bit', plan: pal(4) }, { name: 'pal2', label: '2-bit', plan: pal(2) }],
    });
    const full = path.join(tmp, 'sd15-full');

    it('image PSNR: 8-bit > 4-bit > 2-bit (and the same order for the UNet output)', async () => {
      fullReport = (await runStudy(config(), { outDir: full, isolation: 'inline' })).report;
      const [p8, p4, p2] = fullReport.variants;
      expect(p8!.imagePsnr!).toBeGreaterThan(p4!.imagePsnr!);
      expect(p4!.imagePsnr!).toBeGreaterThan(p2!.imagePsnr!);
      expect(p8!.unet.psnr!).toBeGreaterThan(p4!.unet.psnr!);
      expect(p4!.unet.psnr!).toBeGreaterThan(p2!.unet.psnr!);
      expect(p8!.imageSsim).toBeGreaterThan(p2!.imageSsim);
      // Models are deleted unless kept; the images stay.
      expect(fs.existsSync(path.join(full, 'variants', 'pal8', 'pipeline'))).toBe(false);
      expect(p8!.unetPath).toBeNull();
      expect(fullReport.ios18Unet).toBeNull();
      expect(fs.existsSync(path.join(full, p8!.images[0]!.path))).toBe(true);
    }, 300_000);

    it('cancelled after the first variant, --resume redoes nothing finished and gives the same report', async () => {
      const out = path.join(tmp, 'sd15-resume');
      const controller = new AbortController();
      const compressions: string[] = [];
      const track = (p: StudyProgress) => {
        if (p.step === 'compress-step' && p.done === 0) compressions.push(p.variant!);
        if (p.step === 'done' && p.variant === 'pal8') controller.abort();
      };
      await expect(runStudy(config(), { outDir: out, isolation: 'inline', onProgress: track, signal: controller.signal })).rejects.toBeInstanceOf(AbortError);
      expect(compressions).toEqual(['pal8']);
      const first = path.join(out, 'variants', 'pal8', 'result.json');
      expect(fs.existsSync(first)).toBe(true);
      expect(fs.existsSync(path.join(out, 'variants', 'pal4', 'result.json'))).toBe(false);
      const before = fs.statSync(first).mtimeMs;
      const baselineBefore = fs.statSync(path.join(out, 'baseline', 'result.json')).mtimeMs;
      // Without --resume the folder is refused.
      await expect(runStudy(config(), { outDir: out, isolation: 'inline' })).rejects.toThrow(/--resume/);
      compressions.length = 0;
      // Resumed with two variants at a time.
      const resumed = await runStudy(config(), { outDir: out, isolation: 'inline', resume: true, parallel: 2, onProgress: track });
      expect(compressions.sort()).toEqual(['pal2', 'pal4']);
      expect(resumed.skipped).toEqual(['pal8']);
      expect(fs.statSync(first).mtimeMs).toBe(before);
      expect(fs.statSync(path.join(out, 'baseline', 'result.json')).mtimeMs).toBe(baselineBefore);
      // The same figures as the uninterrupted run (paths are relative to each study folder).
      const norm = (r: StudyReport) => JSON.parse(JSON.stringify(stable(r)).split(r.unetInputs.dir).join('<inputs>')) as unknown;
      expect(norm(resumed.report)).toEqual(norm(fullReport));
      // Resuming a finished study: nothing runs, report.json byte for byte the same.
      const json = fs.readFileSync(path.join(out, 'report.json'), 'utf8');
      compressions.length = 0;
      const again = await runStudy(config(), { outDir: out, isolation: 'inline', resume: true, onProgress: track });
      expect(compressions).toEqual([]);
      expect(again.ran).toEqual([]);
      expect(fs.readFileSync(path.join(out, 'report.json'), 'utf8')).toBe(json);
      // Other settings cannot resume this folder.
      await expect(runStudy(parseStudyConfig({ ...JSON.parse(JSON.stringify(config())), steps: 3 }), { outDir: out, isolation: 'inline', resume: true })).rejects.toThrow(/other settings \(steps\)/);
    }, 300_000);

    const cliBuilt = fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js')) && fs.existsSync(path.join(REPO, 'dist', 'study', 'run.js'));
    it.skipIf(!cliBuilt)('process isolation: the compress child process, its own peak RSS', async () => {
      const cfg = config();
      const one = parseStudyConfig({ ...JSON.parse(JSON.stringify(cfg)), variants: [{ name: 'pal4', label: '4-bit', plan: pal(4) }] });
      const r = await runStudy(one, { outDir: path.join(tmp, 'sd15-process'), isolation: 'process' });
      const v = r.report.variants[0]!;
      expect(v.memory?.method).toBe('process');
      expect(v.memory!.peakRssBytes).toBeGreaterThan(20 * 2 ** 20);
      // The same compression in another process: the same bytes, so the same figures.
      const inline = fullReport.variants.find((x) => x.name === 'pal4')!;
      expect(v.size).toEqual(inline.size);
      expect(v.imagePsnr).toBe(inline.imagePsnr);
      expect(v.unet).toEqual(inline.unet);
    }, 300_000);
    if (!cliBuilt) it('process isolation', () => console.warn('skipped: the CLI is not built (npm run build:ts writes dist/)'));
  });

  it('CLI: --preset with --pipeline and --steps resumes the preset study; --config + --json; config errors name the key', async () => {
    // The preset study above, from the command line: every variant finished before, the report printed again.
    const sdxlOut = path.join(tmp, 'sdxl-preset');
    const preset = await runCli(['study', '--preset', 'coremltools-sdxl', '--pipeline', pipelines['sdxl']!, '--steps', '2', '-o', sdxlOut, '--inline', '--resume']);
    expect(preset.code, preset.stderr).toBe(0);
    expect(preset.stdout).toContain('0 variant(s) run, 10 finished before');
    expect(preset.stdout).toContain('40% sparsity, 4-bit (group_size=16)');
    // A YAML config equal to the sd15 study's: --resume --json prints its report.
    const studyYaml = path.join(tmp, 'study.yaml');
    const variant = (name: string, nbits: number, label: string) => [`  - name: ${name}`, `    label: ${label}`,
      `    plan: {steps: [{api: palettize, config: {config_type: OpPalettizerConfig, global_config: {nbits: ${nbits}, granularity: per_tensor}}}]}`];
    fs.writeFileSync(studyYaml, [
      `pipeline: ${pipelines['sd15']}`, 'prompt: "cat in a tuxedo, oil on canvas"', 'seed: 231', 'steps: 2', 'unetInputs: {count: 1}', 'variants:',
      ...variant('pal8', 8, '8-bit'), ...variant('pal4', 4, '4-bit'), ...variant('pal2', 2, '2-bit'), '',
    ].join('\n'));
    const r = await runCli(['study', '--config', studyYaml, '-o', path.join(tmp, 'sd15-full'), '--inline', '--resume', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as StudyReport;
    expect(json.variants.map((v) => [v.name, v.imagePsnr])).toEqual(fullReport.variants.map((v) => [v.name, v.imagePsnr]));
    // Settings that differ from the folder's study are refused, naming them.
    const other = await runCli(['study', '--config', studyYaml, '--steps', '3', '-o', path.join(tmp, 'sd15-full'), '--inline', '--resume']);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('other settings (steps)');
    const bad = path.join(tmp, 'bad.yaml');
    fs.writeFileSync(bad, `pipeline: ${pipelines['sd15']}\nvariants:\n  - name: a\n    plan: {steps: [{api: palettize, config: {config_type: OpPalettizerConfig, global_config: {nbits: 9}}}]}\n`);
    const e = await runCli(['study', '--config', bad, '-o', path.join(tmp, 'bad-out'), '--inline']);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/variants\[0\]\.plan: .*nbits/);
    const none = await runCli(['study', '-o', path.join(tmp, 'none')]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('study needs --config FILE or --preset NAME');
  }, 300_000);
});
