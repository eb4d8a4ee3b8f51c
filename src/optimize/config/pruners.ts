/** OpThresholdPrunerConfig and OpMagnitudePrunerConfig (spec §5.3). */
import { checkKeys, dropOwnConfigType, checkWeightThreshold, configError, requireFloat, requireInt, show } from './common.js';

export interface OpThresholdPrunerConfigOptions {
  threshold?: number;
  minimum_sparsity_percentile?: number;
  weight_threshold?: number;
}
export const THRESHOLD_PRUNER_DICT_KEYS = ['threshold', 'minimum_sparsity_percentile', 'weight_threshold'] as const;

export class OpThresholdPrunerConfig {
  static readonly configType = 'OpThresholdPrunerConfig';
  readonly configType = 'OpThresholdPrunerConfig';
  /** |w| <= threshold becomes 0. */
  readonly threshold: number;
  /** The weight stays dense when its sparsity ends below this fraction. */
  readonly minimum_sparsity_percentile: number;
  readonly weight_threshold: number;

  constructor(options: OpThresholdPrunerConfigOptions = {}) {
    checkKeys(options as Record<string, unknown>, THRESHOLD_PRUNER_DICT_KEYS, 'OpThresholdPrunerConfig');
    const threshold = requireFloat('threshold', options.threshold ?? 1e-12);
    if (threshold < 0) throw configError('threshold', `Invalid value of "threshold": ${threshold}. Needs to be in [0, inf)`);
    const msp = requireFloat('minimum_sparsity_percentile', options.minimum_sparsity_percentile ?? 0.5);
    if (msp < 0 || msp > 1) {
      throw configError('minimum_sparsity_percentile', `Invalid value of "minimum_sparsity_percentile": ${msp}. Needs to be in [0, 1]`);
    }
    this.threshold = threshold;
    this.minimum_sparsity_percentile = msp;
    this.weight_threshold = checkWeightThreshold(options.weight_threshold === undefined ? 2048 : options.weight_threshold);
    Object.freeze(this);
  }

  toDict(): Record<string, unknown> {
    return {
      threshold: this.threshold,
      minimum_sparsity_percentile: this.minimum_sparsity_percentile,
      weight_threshold: this.weight_threshold,
      config_type: 'OpThresholdPrunerConfig',
    };
  }

  static fromDict(d: Record<string, unknown>): OpThresholdPrunerConfig {
    d = dropOwnConfigType(d, 'OpThresholdPrunerConfig');
    checkKeys(d, THRESHOLD_PRUNER_DICT_KEYS, 'OpThresholdPrunerConfig');
    return new OpThresholdPrunerConfig(d as OpThresholdPrunerConfigOptions);
  }

  equals(other: unknown): boolean {
    return other instanceof OpThresholdPrunerConfig && JSON.stringify(other.toDict()) === JSON.stringify(this.toDict());
  }

  toString(): string {
    return `OpThresholdPrunerConfig(threshold=${this.threshold}, minimum_sparsity_percentile=${this.minimum_sparsity_percentile}, weight_threshold=${this.weight_threshold})`;
  }
}

export interface OpMagnitudePrunerConfigOptions {
  target_sparsity?: number | null;
  block_size?: number | null;
  n_m_ratio?: readonly [number, number] | readonly number[] | null;
  dim?: number | null;
  weight_threshold?: number;
}
export const MAGNITUDE_PRUNER_DICT_KEYS = ['target_sparsity', 'block_size', 'n_m_ratio', 'dim', 'weight_threshold'] as const;

/** Structured pruning (block / n:m) only touches these op inputs (coremltools _SUPPORTED_OPS_FOR_STRUCTURAL_PRUNING). */
export const STRUCTURAL_PRUNING_INPUTS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  conv: ['weight'],
  linear: ['weight'],
});

export class OpMagnitudePrunerConfig {
  static readonly configType = 'OpMagnitudePrunerConfig';
  readonly configType = 'OpMagnitudePrunerConfig';
  readonly target_sparsity: number | null;
  readonly block_size: number | null;
  readonly n_m_ratio: readonly [number, number] | null;
  /** Defaults to 0 with block_size, 1 with n_m_ratio, else null. */
  readonly dim: number | null;
  readonly weight_threshold: number;

  constructor(options: OpMagnitudePrunerConfigOptions = {}) {
    checkKeys(options as Record<string, unknown>, MAGNITUDE_PRUNER_DICT_KEYS, 'OpMagnitudePrunerConfig');
    const ts = options.target_sparsity ?? null;
    const bs = options.block_size ?? null;
    const nm = options.n_m_ratio ?? null;
    const dim = options.dim ?? null;

    // Validators in coremltools' field order.
    if (ts !== null) requireFloat('target_sparsity', ts);
    if ((ts === null) === (nm === null)) {
      throw configError(ts === null ? 'target_sparsity' : 'n_m_ratio',
        `Either "target_sparsity" or "n_m_ratio" need to be set. They cannot be set at the same time. Got target_sparsity=${show(ts)}, n_m_ratio=${show(nm)}.`);
    }
    if (ts !== null && (ts < 0 || ts > 1)) {
      throw configError('target_sparsity', `Invalid value of "target_sparsity": ${ts}. Needs to be in [0, 1].`);
    }
    if (bs !== null) requireInt('block_size', bs);
    if (bs !== null && nm !== null) {
      throw configError('block_size', `"block_size" and "n_m_ratio" cannot be set at the same time. Got block_size=${bs}, n_m_ratio=${show(nm)}.`);
    }
    if (bs !== null && bs <= 1) throw configError('block_size', `"block_size" must be an integer > 1. Got ${bs}.`);
    let ratio: readonly [number, number] | null = null;
    if (nm !== null) {
      if (!Array.isArray(nm) || nm.length !== 2 || nm[0]! > nm[1]!) {
        throw configError('n_m_ratio', `"n_m_ratio" must be a tuple of two integers (n, m). n <= m. Got ${show(nm)}`);
      }
      // coremltools does not check these and fails inside numpy; we reject them here.
      const [n, m] = nm as readonly unknown[];
      if (typeof n !== 'number' || typeof m !== 'number' || !Number.isSafeInteger(n) || !Number.isSafeInteger(m) || n < 0 || m < 1) {
        throw configError('n_m_ratio', `"n_m_ratio" must be a tuple of two integers (n, m) with 0 <= n <= m and m >= 1. Got ${show(nm)}`);
      }
      ratio = Object.freeze([n, m] as [number, number]);
    }
    if (dim !== null) {
      requireInt('dim', dim);
      if (bs === null && nm === null) {
        throw configError('dim', `"dim" can only be set along with "block_size" or "n_m_ratio". Got dim=${dim}.`);
      }
      if (dim !== 0 && dim !== 1) throw configError('dim', `"dim" must be 1 or 0. Got ${dim}.`);
    }
    this.target_sparsity = ts;
    this.block_size = bs;
    this.n_m_ratio = ratio;
    this.dim = dim ?? (bs !== null ? 0 : ratio !== null ? 1 : null);
    this.weight_threshold = checkWeightThreshold(options.weight_threshold === undefined ? 2048 : options.weight_threshold);
    Object.freeze(this);
  }

  /** Block or n:m pruning: applies only to conv/linear `weight` unless the const is named in op_name_configs. */
  isStructural(): boolean {
    return this.n_m_ratio !== null || this.block_size !== null;
  }

  /** coremltools' _validate_op_type, run for every op_type_configs entry. */
  validateOpType(opType: string): void {
    if (this.isStructural() && !Object.hasOwn(STRUCTURAL_PRUNING_INPUTS, opType)) {
      throw configError('op_type_configs', `block sparsity or n:m pruning does not support op type ${opType}.`);
    }
  }

  toDict(): Record<string, unknown> {
    return {
      target_sparsity: this.target_sparsity,
      block_size: this.block_size,
      n_m_ratio: this.n_m_ratio === null ? null : [...this.n_m_ratio],
      dim: this.dim,
      weight_threshold: this.weight_threshold,
      config_type: 'OpMagnitudePrunerConfig',
    };
  }

  static fromDict(d: Record<string, unknown>): OpMagnitudePrunerConfig {
    d = dropOwnConfigType(d, 'OpMagnitudePrunerConfig');
    checkKeys(d, MAGNITUDE_PRUNER_DICT_KEYS, 'OpMagnitudePrunerConfig');
    return new OpMagnitudePrunerConfig(d as OpMagnitudePrunerConfigOptions);
  }

  equals(other: unknown): boolean {
    return other instanceof OpMagnitudePrunerConfig && JSON.stringify(other.toDict()) === JSON.stringify(this.toDict());
  }

  toString(): string {
    return `OpMagnitudePrunerConfig(target_sparsity=${show(this.target_sparsity)}, block_size=${show(this.block_size)}, n_m_ratio=${show(this.n_m_ratio)}, dim=${show(this.dim)}, weight_threshold=${this.weight_threshold})`;
  }
}
