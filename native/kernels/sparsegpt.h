// SparseGPT and GPTQ on one layer, as the reference implementations compute them
// (IST-DASLab sparsegpt `fasterprune`, gptq `fasterquant`, coremltools layerwise_compression):
// dead columns, dampening, the damped inverse Hessian's upper Cholesky factor U, blocks of
// `block_size` columns with per-row OBS updates inside a block and one GEMM for the rest of the
// weight (lazy batch update). The factor is computed with one Cholesky + one triangular inverse
// instead of the reference's three factorizations (hessian.h) and lives in the Hessian's own buffer.
//
// Weights are row-major [rows, columns] float32: a linear weight [out, in]; a conv weight flattened
// to [C_out/groups, C_in/groups·kh·kw] for one group (the group's output channels).
// Threads: rows are independent inside a block, so the block's column loop runs on row chunks; the
// lazy update is a tiled GEMM. Results do not depend on the thread count, except through the factor
// when it goes through the BLAS's threaded LAPACK (Hessian::use_lapack_factor).
// Peak memory: the Hessian (columns², factored in place) + the weight copy + per task a chunk (<= 128
// rows) × block_size error buffer; SparseGPT's adaptive mask adds the block's rows × block_size scores
// only where they are <= 1/32 of the Hessian (else they are recomputed per select pass).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hessian.h"

namespace cmo::kernels {

// GPTQ's quantizer (quant.py `Quantizer.find_params(weight=True)` + `quantize`):
// per row (and group) xmin = min(min x, 0), xmax = max(max x, 0); symmetric: xmax = max(|xmin|, xmax),
// xmin = -xmax where xmin < 0; all-zero → [-1, 1]; scale = (xmax − xmin)/maxq; zero = (maxq+1)/2
// (symmetric) or round(−xmin/scale) (affine); q = clamp(round(x/scale) + zero, 0, maxq), maxq = 2^bits − 1.
struct QuantGrid {
  int bits = 0;               // 0 = no quantization
  bool symmetric = true;
  int64_t group_size = 0;     // 0 = per channel (one grid per row); > 0: per block of group_size columns;
                              // -1 = per tensor (one grid for the whole weight, repeated per row)
  // SparseGPT: round each grid scale to float16 (the smallest positive half where it would flush to 0)
  // before quantizing, for a model that stores the scale as fp16 — the result is then what the
  // stored codes, scale and offset decode to, bit for bit.
  bool fp16_scales = false;
};

struct SparseGptOptions {
  double target_sparsity = 0.5;  // unstructured, used when n == 0
  int n = 0, m = 0;              // n:m (n pruned in every m consecutive columns of a row)
  int64_t block_size = 128;      // processing_group_size; a multiple of m for n:m
  double dampening = 0.01;       // hessian_dampening (fraction of mean diag H)
  // Optional quantization of the surviving weights (coremltools weight_dtype/granularity/scheme):
  // grids computed once from the unpruned weight (after the dead-column zeroing), as coremltools does.
  QuantGrid quant;
  // Called on the calling thread after each processing block (columns done, columns); may throw
  // (e.g. cmo::Cancelled) to abandon the layer — the Hessian stays valid.
  std::function<void(int64_t, int64_t)> on_block;
  // Unquantized, without n:m, rows go through the OBS loop 16 at a time (one vector across rows);
  // false keeps every row on the one-row loop. Both give the same bits (the test compares them).
  bool row_lanes = true;
};

struct SparseGptResult {
  std::vector<float> weight;      // pruned (and fake-quantized) weight, [rows, columns]
  std::vector<uint8_t> keep_mask; // 1 = kept by the mask (a kept weight may still be exactly 0)
  int64_t dead_columns = 0;
  double error = 0;               // the reference's Losses sum: Σ (w − q)²/d² / 2
  double sparsity = 0;            // fraction of mask = 0
  // n:m with columns % m != 0: the last group of `tail` columns prunes floor(n·tail/m) per row.
  std::string tail_note;          // empty when no tail policy applied
  std::vector<float> scales, zero_points;  // when quantized: [rows, groups] (groups = 1 per channel)
  // When quantized: each weight's grid code, weight = scale·(code − zero_point) bit for bit (pruned
  // entries hold the code of 0). Empty otherwise.
  std::vector<uint8_t> q;
};

// The note sparse_gpt reports for an n:m tail (empty when columns % m == 0).
std::string nm_tail_note(int64_t columns, int n, int m);
// GPTQ's act-order: columns by descending diag(H) (dead columns count as 1), stable.
std::vector<int32_t> act_order_permutation(const Hessian& h);

// target_sparsity 0 prunes nothing (the reference's kth-value rule would still prune the smallest
// score of every block). The factor is taken from (or computed into) `h` (see Hessian::factor); h's H stays intact.
SparseGptResult sparse_gpt(const float* weight, int64_t rows, int64_t columns, Hessian& h, const SparseGptOptions& o,
                           ThreadPool* pool = nullptr);

// The block loop alone, with a factor computed elsewhere (the benchmark's reference pipeline).
SparseGptResult sparse_gpt_with_factor(const float* weight, int64_t rows, int64_t columns, const InverseFactor& f,
                                       const SparseGptOptions& o, ThreadPool* pool = nullptr);

struct GptqOptions {
  QuantGrid quant{4, true, 0};
  bool act_order = false;        // process columns by descending diag(H) (after the dead fix)
  // group_size > 0 only. false (IST-DASLab default): a group's grid is chosen when the column loop
  // reaches it, from the error-updated weight as it stood at the start of that processing block
  // (groups follow the processing order). true: every grid from the dead-zeroed original weight,
  // groups by original column — coremltools forces this whenever act_order is on.
  bool static_groups = false;
  int64_t block_size = 128;
  double dampening = 0.01;
  std::function<void(int64_t, int64_t)> on_block;  // as SparseGptOptions::on_block
};

struct GptqResult {
  std::vector<float> weight;       // dequantized, original column order, [rows, columns]
  std::vector<uint8_t> q;          // codes 0..2^bits−1, [rows, columns], original column order
  std::vector<float> scales, zero_points;  // [rows, groups]
  std::vector<int32_t> group_index;        // per ORIGINAL column: its group (the reference's g_idx)
  std::vector<int32_t> perm;               // act_order: processing order (empty otherwise)
  int64_t dead_columns = 0;
  double error = 0;                // Losses sum
};

GptqResult gptq(const float* weight, int64_t rows, int64_t columns, Hessian& h, const GptqOptions& o,
                ThreadPool* pool = nullptr);

// ‖WX − ŴX‖²/‖WX‖² over the calibration inputs, from the (undamped) Hessian:
// tr((W−Ŵ) H (W−Ŵ)ᵀ) / tr(W H Wᵀ). 0 when the denominator is 0 and W == Ŵ; +inf when only it is 0.
double relative_reconstruction_error(const float* w, const float* w_hat, int64_t rows, int64_t columns,
                                     const Hessian& h, ThreadPool* pool = nullptr);

// The reference's float32 pipeline on this build's BLAS (sparsegpt_refpath.cc), the benchmark's
// same-run baseline: a full-GEMM Hessian update, and three factorizations on a copy of H.
void hessian_add_rows_gemm(Hessian& h, const float* x, int64_t rows, int64_t samples_in_batch, ThreadPool* pool = nullptr);
SparseGptResult sparse_gpt_three_factorizations(const float* weight, int64_t rows, int64_t columns, const Hessian& h,
                                                const SparseGptOptions& o, ThreadPool* pool = nullptr);

// Slow references (sparsegpt_ref.cc): float64 plain loops of the reference algorithms exactly as
// written (Cholesky, cholesky_inverse, Cholesky of the inverse), from a full symmetric H. The
// oracles of the tests and the benchmark's "reference path" at small sizes.
SparseGptResult sparse_gpt_ref(const float* weight, int64_t rows, int64_t columns, const std::vector<double>& h,
                               const SparseGptOptions& o);
GptqResult gptq_ref(const float* weight, int64_t rows, int64_t columns, const std::vector<double>& h,
                    const GptqOptions& o);
// The reference's upper factor chol(chol_inverse(chol(H_d)), upper) in float64 (three factorizations).
std::vector<double> inverse_factor_ref(std::vector<double> h_damped, int64_t columns);

}  // namespace cmo::kernels
