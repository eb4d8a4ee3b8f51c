// Layer-input Hessians for SparseGPT / GPTQ: H = (2/n)·Σ x xᵀ over every calibration row, kept with
// the reference's running-mean scaling (IST-DASLab sparsegpt/gptq `add_batch`, coremltools
// `_compute_hessian`): per batch of `tmp` samples, H *= n/(n+tmp); n += tmp; H += (2/n)·XᵀX.
// n counts samples (sequences / images), not rows: the rows of one sample are summed.
//
// Storage: one row-major columns×columns float buffer. H lives in its LOWER triangle and diagonal
// (SYRK fills one triangle). The strict upper triangle is scratch: factor() writes the damped inverse
// Hessian's upper Cholesky factor there (diagonal included) and keeps H's diagonal aside, so the
// Hessian is never copied and both H and the factor fit in one columns² buffer (peak = 1× H).
//
// Conv: one Hessian per conv group. Its columns are the group's input window unfolded like the
// flattened weight [C_out, C_in/groups, kh, kw]: column = (c·kh + ky)·kw + kx, c within the group;
// rows are the output positions (padding, stride and dilation as the conv applies them).
//
// Thread safety: calls on one Hessian serialise on an internal mutex; once factored, any number of
// sparse_gpt / gptq calls may read the factor concurrently (q, k, v share one Hessian).
#pragma once
#include <cstdint>
#include <mutex>
#include <vector>

#include "../util/thread_pool.h"

namespace cmo::kernels {

struct ConvGeometry {
  int64_t in_channels = 0, groups = 1;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;

  int64_t group_channels() const { return in_channels / groups; }
  // Hessian columns of one group: C_in/groups · kh · kw.
  int64_t columns() const { return group_channels() * kernel_h * kernel_w; }
  int64_t out_height(int64_t height) const;
  int64_t out_width(int64_t width) const;
  // Throws cmo::Error("EINVAL") on a geometry the conv could not run (non-positive sizes, groups not
  // dividing C_in, negative padding, an empty output).
  void validate(int64_t height, int64_t width) const;
};

// What factor() produced: the damped inverse's upper Cholesky factor U (H_d⁻¹ = UᵀU) in the upper
// triangle of `u` (row stride = columns), and which columns were dead (H_ii == 0).
struct InverseFactor {
  const float* u = nullptr;
  int64_t columns = 0;
  std::vector<uint8_t> dead;  // 1 = dead column (H's own column order, not permuted)
  int64_t dead_count = 0;
};

class Hessian {
 public:
  explicit Hessian(int64_t columns);
  Hessian(const Hessian&) = delete;
  Hessian& operator=(const Hessian&) = delete;

  int64_t columns() const { return columns_; }
  // The reference's `nsamples`: the sum of samples_in_batch over every add_*.
  int64_t samples() const { return samples_; }
  // Bytes held (the columns² buffer and the saved diagonal).
  size_t bytes() const;

  // Linear / matmul input: x is [rows, columns] row-major (all tokens of `samples_in_batch` samples,
  // e.g. a [B, T, C] activation with rows = B·T and samples_in_batch = B — the reference's `tmp`).
  void add_rows(const float* x, int64_t rows, int64_t samples_in_batch, ThreadPool* pool = nullptr);
  // Conv input, NCHW [batch, in_channels, height, width]; accumulates group `group`'s window
  // (columns() must equal g.columns()). samples_in_batch = batch, as the reference's tmp.
  void add_conv_input(const float* x, int64_t batch, int64_t height, int64_t width, const ConvGeometry& g,
                      int64_t group, ThreadPool* pool = nullptr);

  // H(i, j) as the reference holds it (undamped, dead columns untouched), valid in every state.
  float at(int64_t i, int64_t j) const;
  // The full symmetric H (columns² floats: tests and the addon's hessianData only).
  std::vector<float> dense() const;
  // H's diagonal.
  std::vector<float> diagonal() const;

  // Dead columns (H_ii == 0 → 1), dampening damp·mean(diag H) (after the dead fix, as the reference),
  // then U = upper Cholesky factor of H_d⁻¹ computed with ONE Cholesky and ONE triangular inverse
  // (see hessian.cc: H_d = V·Vᵀ with V upper ⇒ H_d⁻¹ = V⁻ᵀV⁻¹ ⇒ U = V⁻¹). Cached: a second call with
  // the same dampening returns the same factor; another dampening refactors. Adding rows afterwards
  // drops the factor. Throws cmo::Error("ENOTPD") when H_d is not positive definite.
  // `perm` (optional): factor P·H·Pᵀ instead, column i of the factor = column perm[i] of H (GPTQ's
  // act-order); the mirror step gathers through it, so no permuted copy of H is made.
  InverseFactor factor(double dampening, const std::vector<int32_t>* perm = nullptr, ThreadPool* pool = nullptr);
  bool factored() const { return factored_; }
  // Which factorization route factor() takes: the BLAS's threaded LAPACK (potrf + trtri on the
  // reversed matrix; the default where a LAPACK is linked, from kLapackFactorMinColumns columns) or
  // the tiled one on our pool (the portable build, and smaller Hessians: OpenBLAS's potrf / trtri
  // pack a blocking × n panel in their own buffer, 1.2 MB at 1,280 columns = 0.2 of that Hessian,
  // while the tiled route's workspace is threads·256² floats). Same factor up to rounding either way;
  // process-wide; for tests and benchmarks (min_columns 0: LAPACK at every size).
  static constexpr int64_t kLapackFactorMinColumns = 2049;
  static void use_lapack_factor(bool on, int64_t min_columns = kLapackFactorMinColumns);

  // Raw buffer (see Storage above). Only for code that knows the layout.
  float* data() { return buf_.data(); }
  const float* data() const { return buf_.data(); }

 private:
  void scale_for_batch(int64_t samples_in_batch, float& alpha, float& beta);
  void unfactor();

  int64_t columns_;
  int64_t samples_ = 0;
  std::vector<float> buf_;
  std::vector<float> diag_;  // H's diagonal while factored (the buffer's diagonal then holds U's)
  bool factored_ = false;
  double factored_damp_ = 0;
  std::vector<int32_t> factored_perm_;
  std::vector<uint8_t> dead_;
  int64_t dead_count_ = 0;
  mutable std::mutex mutex_;
};

// Scalar references (float64 accumulation, explicit unfold) — the oracles of the tests.
// Returns the full symmetric H after adding the given batches one after another, like add_batch.
void hessian_add_rows_ref(std::vector<double>& h, int64_t columns, int64_t& nsamples, const float* x, int64_t rows,
                          int64_t samples_in_batch);
// Explicit unfold of one group: [batch·out_h·out_w, columns] rows, column order of the flattened weight.
std::vector<float> conv_unfold_ref(const float* x, int64_t batch, int64_t height, int64_t width, const ConvGeometry& g,
                                   int64_t group);

}  // namespace cmo::kernels
