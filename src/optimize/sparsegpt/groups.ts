/**
 * Layers (coremltools' `layers`) and Hessian waves. A layer is the set of ops one regex match names:
 * Apple's `down_blocks.\d+` makes each down block one layer (searched in op and weight names, so
 * "down_blocks_0_resnets_0_conv1" matches as down_blocks_0). Without regexes, consecutive ops that
 * read the same input form one layer (q, k, v) and every other op is its own. Layers are processed
 * in program order; two whose op ranges interleave are merged (the sequential order needs disjoint
 * ranges). Ops that read the same rows share Hessians; Hessians are allocated in waves that fit the
 * memory budget.
 */
import { ConfigError } from '../../errors.js';
import type { CaptureWatch } from '../../kernels/calibrate.js';
import type { LayerOp } from './graph.js';

export interface LayerGroup {
  key: string;
  layers: LayerOp[];
  /** First and last top-level op index of its ops. */
  start: number;
  end: number;
}

export interface Grouping {
  groups: LayerGroup[];
  /** Ops no `layers` regex matched (left as they are). */
  unmatched: LayerOp[];
  /** Keys of layers merged into an earlier one because their ranges interleave. */
  merged: string[];
}

export function groupLayers(layers: readonly LayerOp[], regexes: readonly string[] | null): Grouping {
  const byKey = new Map<string, LayerGroup>();
  const ordered: LayerGroup[] = [];
  const unmatched: LayerOp[] = [];
  const compiled = regexes?.map((r) => new RegExp(r)) ?? null;
  let previous: LayerOp | undefined;
  let previousKey = '';
  for (const op of layers) {
    let key: string | null;
    if (compiled) {
      key = null;
      for (let i = 0; i < compiled.length && key === null; i++) {
        const m = compiled[i]!.exec(op.name) ?? compiled[i]!.exec(op.weightName);
        if (m) key = m[0];
      }
    } else {
      key = previous && previous.input === op.input ? previousKey : op.name;
    }
    previous = op;
    if (key === null) {
      unmatched.push(op);
      continue;
    }
    previousKey = key;
    let g = byKey.get(key);
    if (!g) {
      g = { key, layers: [], start: op.position, end: op.position };
      byKey.set(key, g);
      ordered.push(g);
    }
    g.layers.push(op);
    g.start = Math.min(g.start, op.position);
    g.end = Math.max(g.end, op.position);
  }
  ordered.sort((a, b) => a.start - b.start);
  const groups: LayerGroup[] = [];
  const merged: string[] = [];
  for (const g of ordered) {
    const last = groups[groups.length - 1];
    if (last && g.start <= last.end) {
      last.layers.push(...g.layers);
      last.end = Math.max(last.end, g.end);
      merged.push(g.key);
    } else {
      groups.push({ ...g, layers: [...g.layers] });
    }
  }
  for (const g of groups) g.layers.sort((a, b) => a.position - b.position);
  return { groups, unmatched, merged };
}

export interface Wave {
  layers: LayerOp[];
  /** Columns of each Hessian of the wave. */
  columns: number[];
  watches: CaptureWatch[];
  /** Per layer: its Hessians (one per conv group) and the ones to free after it. */
  hessians: Map<LayerOp, number[]>;
  release: Map<LayerOp, number[]>;
  bytes: number;
}

/** Bytes of a columns × columns fp32 Hessian (plus its saved diagonal). */
export function hessianBytes(columns: number): number {
  return columns * columns * 4 + columns * 4;
}

/** Bytes as "N bytes (X MiB)". */
function bytesText(n: number): string {
  return `${n} bytes (${(n / 2 ** 20).toFixed(n < 2 ** 20 ? 3 : 1)} MiB)`;
}

/**
 * Splits layers into waves of at most `budget` Hessian bytes (ops sharing rows stay in one wave).
 * A share set larger than the budget on its own is a ConfigError, raised before any calibration
 * work: its Hessians (one per conv group) are filled by the same pass over the samples, and SparseGPT
 * / GPTQ factor each one whole in place, so no split of the set would keep the peak under the budget.
 */
export function planWaves(layers: readonly LayerOp[], budget: number): Wave[] {
  const sets = new Map<string, LayerOp[]>();
  for (const l of layers) {
    const key = `${l.shareKey}#${l.groups}`;
    const list = sets.get(key);
    if (list) list.push(l);
    else sets.set(key, [l]);
  }
  const waves: Wave[] = [];
  let current: LayerOp[][] = [];
  let bytes = 0;
  const flush = () => {
    if (current.length > 0) waves.push(makeWave(current));
    current = [];
    bytes = 0;
  };
  for (const set of sets.values()) {
    const b = hessianBytes(set[0]!.columns) * set[0]!.groups;
    if (b > budget) {
      const first = set[0]!;
      const size = first.groups > 1 ? `${first.groups} Hessians of ${first.columns}×${first.columns} fp32 (one per conv group)` : `a ${first.columns}×${first.columns} fp32 Hessian`;
      throw new ConfigError(`maxMemory (--max-memory) ${bytesText(budget)} cannot hold the Hessians of ${set.map((l) => l.name).join(', ')}: ${size} = ${bytesText(b)}, built in one pass and factored whole; raise it to at least ${b} bytes`);
    }
    if (current.length > 0 && bytes + b > budget) flush();
    current.push(set);
    bytes += b;
  }
  flush();
  return waves;
}

function makeWave(sets: LayerOp[][]): Wave {
  const wave: Wave = { layers: [], columns: [], watches: [], hessians: new Map(), release: new Map(), bytes: 0 };
  for (const set of sets) {
    const first = set[0]!;
    const indices = Array.from({ length: first.groups }, () => {
      wave.columns.push(first.columns);
      wave.bytes += hessianBytes(first.columns);
      return wave.columns.length - 1;
    });
    set.forEach((l, i) => {
      wave.watches.push({ op: l.name, kind: l.kind, hessians: i === 0 ? indices : [] });
      wave.hessians.set(l, indices);
      wave.release.set(l, i === set.length - 1 ? indices : []);
    });
    wave.layers.push(...set);
  }
  wave.layers.sort((a, b) => a.position - b.position);
  return wave;
}
