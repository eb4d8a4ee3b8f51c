/** Shared access to shared/fixtures/coremltools-golden for the compression tests. */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const goldenDir = path.resolve(__dirname, '../../../shared/fixtures/coremltools-golden');

export interface GoldenInput { op: string; op_type: string; input: string; dtype: string; shape: number[] }
export interface GoldenWeight {
  name: string;
  chain: string[];
  shape: number[];
  dtype: string;
  n_elements: number;
  sha256_f32le: string;
  sse_vs_source?: number;
  source_weight?: string;
  constexpr_inputs?: GoldenInput[];
}
export interface GoldenStep { api: string; joint_compression: boolean; config: Record<string, unknown> }
export interface GoldenSidecar {
  file: string;
  source: string;
  status: 'ok' | 'rejected';
  steps: GoldenStep[];
  weights: GoldenWeight[];
  weight_bin_bytes?: number;
  error_type?: string;
  error_message?: string;
  total_sse_vs_source?: number;
}

export function loadSidecar(name: string): GoldenSidecar {
  return JSON.parse(readFileSync(path.join(goldenDir, `${name}.json`), 'utf8')) as GoldenSidecar;
}

export function goldenNames(prefix: string): string[] {
  return readdirSync(goldenDir).filter((f) => f.startsWith(prefix) && f.endsWith('.json')).map((f) => f.replace(/\.json$/, '')).sort();
}

/** Sum of squared differences (double precision). */
export function sse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return s;
}
