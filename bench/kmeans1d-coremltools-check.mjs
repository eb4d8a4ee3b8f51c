#!/usr/bin/env node
/**
 * Checks the coremltools k-means re-implementation (bench/kmeans1d_coremltools.cc) against this
 * package's own palettization: on synthetic fp16 weights (generate-unet's syntheticFp16), per
 * group, the fp16 LUT and every uint8 index of `palettizeTensor` (per_grouped_channel, channel
 * axis 0) must equal the re-implementation's. Both are exact optimal 1-D k-means on the same
 * weighted histogram; where a group differs (ties between equally good segmentations may), its
 * SSE is compared. First the binary's --self-test (kmeans1d's published known answers, fp16
 * conversions). Also prints both times (informative only: small cases, shared machine).
 *
 *   node bench/kmeans1d-coremltools-check.mjs [--threads 2] [ROWSxCOLS:NBITS:GS ...]
 * Default cases: 2048x2048:4:16 (one issue-14 layer), 64x1024:2:16 and 64x1024:8:16 (16,384-element
 * groups: coremltools' kmeans1d path needs >= 10,000). Exit code 1 if any group's output differs
 * with a different SSE (a real disagreement), 0 otherwise (tied groups are listed).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fmtSec, machineLine, now, parseArgs, printTable, seedOf } from './lib/common.mjs';
import { buildCtKmeans, makeTempDir, runCtKmeans, selfTestCtKmeans } from './lib/ct-kmeans.mjs';

const dist = (p) => import(new URL(`../dist/${p}`, import.meta.url).href);
const log = (...a) => console.log(...a);

function parseCase(s) {
  const m = /^(\d+)x(\d+):(\d+):(\d+)$/.exec(s);
  if (!m) throw new Error(`case "${s}": expected ROWSxCOLS:NBITS:GROUP_SIZE, e.g. 2048x2048:4:16`);
  return { rows: Number(m[1]), cols: Number(m[2]), nbits: Number(m[3]), groupSize: Number(m[4]) };
}

/** Σ (w − lut[idx])² over one group, in double. */
function groupSse(weights, lut, idx, g, groupElems, lutLen, toF) {
  let s = 0;
  for (let i = g * groupElems; i < (g + 1) * groupElems; i++) {
    const d = toF(weights[i]) - toF(lut[g * lutLen + idx[i]]);
    s += d * d;
  }
  return s;
}

async function main() {
  const args = parseArgs();
  const threads = Number(args.threads ?? 2);
  const cases = (args._?.length ? args._ : ['2048x2048:4:16', '64x1024:2:16', '64x1024:8:16']).map(parseCase);
  const [{ palettizeTensor }, { syntheticFp16 }, { halfBitsToFloat }] = await Promise.all([
    dist('kernels/palettize.js'), dist('util/synthetic.js'), dist('mil/values.js'),
  ]);
  log(machineLine());
  const tmp = makeTempDir();
  let disagreements = 0;
  try {
    const { binary, reason } = buildCtKmeans(tmp.dir);
    if (!binary) throw new Error(`cannot build bench/kmeans1d_coremltools.cc: ${reason}`);
    log(selfTestCtKmeans(binary));
    const rows = [];
    for (const c of cases) {
      const { rows: R, cols: C, nbits, groupSize } = c;
      const name = `${R}x${C}`;
      const weights = syntheticFp16({ count: R * C, kind: 'weight', fanIn: C, seed: seedOf(`check_${name}`) });
      const file = path.join(tmp.dir, `${name}.f16`);
      fs.writeFileSync(file, Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength));

      const s = now();
      const ours = await palettizeTensor({ data: weights, shape: [R, C], nbits, granularity: 'per_grouped_channel', groupSize, channelAxis: 0, threads });
      const oursSeconds = now() - s;
      if (ours.skipped) throw new Error(`${name}: the package skipped the weight: ${ours.skipReason}`);

      const dump = path.join(tmp.dir, `${name}.dump`);
      const ct = runCtKmeans(binary, file, { rows: R, cols: C, nbits, groupSize, threads, dump });
      const groups = R / groupSize;
      const lutLen = 1 << nbits;
      const groupElems = groupSize * C;
      const bytes = fs.readFileSync(dump);
      if (bytes.byteLength !== groups * lutLen * 2 + R * C) throw new Error(`${name}: dump has ${bytes.byteLength} bytes`);
      const ctLut = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + groups * lutLen * 2));
      const ctIdx = new Uint8Array(bytes.buffer, bytes.byteOffset + groups * lutLen * 2, R * C);
      if (ours.lut.length !== ctLut.length) throw new Error(`${name}: LUT sizes ${ours.lut.length} vs ${ctLut.length}`);

      let lutDiff = 0, idxDiff = 0, tiedDiff = 0, indexCount = 0;
      const detail = [];
      for (let g = 0; g < groups; g++) {
        let lutSame = true, idxSame = true;
        for (let i = 0; i < lutLen; i++) if (ours.lut[g * lutLen + i] !== ctLut[g * lutLen + i]) { lutSame = false; break; }
        for (let i = g * groupElems; i < (g + 1) * groupElems; i++) if (ours.indices[i] !== ctIdx[i]) { idxSame = false; indexCount++; }
        if (lutSame && idxSame) continue;
        if (!lutSame) lutDiff++;
        if (!idxSame) idxDiff++;
        const a = groupSse(weights, ours.lut, ours.indices, g, groupElems, lutLen, halfBitsToFloat);
        const b = groupSse(weights, ctLut, ctIdx, g, groupElems, lutLen, halfBitsToFloat);
        if (a === b) tiedDiff++;
        else disagreements++;
        if (detail.length < 5) detail.push(`group ${g}: SSE ours ${a.toPrecision(12)} vs re-implementation ${b.toPrecision(12)}`);
      }
      rows.push([
        `${name} ${nbits}-bit gs${groupSize}`, String(groups), `${ct.distinct_mean.toFixed(0)} (${ct.distinct_min}–${ct.distinct_max})`,
        lutDiff || idxDiff ? `${lutDiff} LUT / ${idxDiff} index (${indexCount} indices), ${tiedDiff} with equal SSE` : 'none: identical',
        ours.sse.toPrecision(10), ct.sse.toPrecision(10), fmtSec(oursSeconds), fmtSec(ct.wall_s),
      ]);
      for (const d of detail) log(`  ${name}: ${d}`);
    }
    printTable(['case', 'groups', 'distinct / group', 'groups that differ', 'SSE ours', 'SSE re-impl.', `ours (${threads} thr)`, `re-impl. (${threads} thr)`], rows);
    log(disagreements ? `!! ${disagreements} group(s) differ with a different SSE` : 'LUTs and indices agree (any differing group has an equal SSE)');
  } finally {
    tmp.cleanup();
  }
  process.exit(disagreements ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
