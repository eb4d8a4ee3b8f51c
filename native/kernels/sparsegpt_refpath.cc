// The reference implementation's float32 pipeline on this build's BLAS/LAPACK — the benchmark's
// same-run baseline (what PyTorch runs for sparsegpt.py, minus Python): the Hessian by a full square
// product XᵀX into a temporary (`H += inp @ inp.T`), then on a dense copy of H: L = chol(H_d),
// cholesky_inverse(L), U = chol(H_d⁻¹, upper) — three factorizations, LAPACK threaded by the BLAS
// itself as in torch — then the same block loop as sparse_gpt.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "../executor/ops/gemm.h"
#include "../linalg/blas.h"
#include "../util/error.h"
#include "sparsegpt.h"

namespace cmo::kernels {

void hessian_add_rows_gemm(Hessian& h, const float* x, int64_t rows, int64_t samples_in_batch, ThreadPool* pool) {
  const int64_t n = h.columns();
  std::vector<float> full(static_cast<size_t>(n * n));
  exec::use_single_threaded_blas();
  exec::gemm(pool ? pool->size() : 0, true, false, n, n, rows, 1.0f, x, n, x, n, 0.0f, full.data(), n);
  h.add_rows(x, 0, samples_in_batch, pool);  // zero rows: only H *= n/(n+tmp); n += tmp
  const float alpha = static_cast<float>(2.0 / static_cast<double>(h.samples()));
  float* a = h.data();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) a[i * n + j] += alpha * full[static_cast<size_t>(i * n + j)];
}

SparseGptResult sparse_gpt_three_factorizations(const float* weight, int64_t rows, int64_t n, const Hessian& h,
                                                const SparseGptOptions& o, ThreadPool* pool) {
  if (n != h.columns()) throw Error("EINVAL", "SparseGPT (reference path): weight and Hessian sizes differ");
  std::vector<float> a = h.dense();  // the reference's H (its own buffer)
  InverseFactor f;
  f.columns = n;
  f.dead.assign(static_cast<size_t>(n), 0);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    float& d = a[static_cast<size_t>(i * n + i)];
    if (d == 0.0f) {
      d = 1.0f;
      f.dead[static_cast<size_t>(i)] = 1;
      ++f.dead_count;
    }
    sum += d;
  }
  const float damp = static_cast<float>(o.dampening * static_cast<float>(sum / static_cast<double>(n)));
  for (int64_t i = 0; i < n; ++i) a[static_cast<size_t>(i * n + i)] += damp;
  // LAPACK threaded by OpenBLAS with the pool's size, as torch would run it; CMO_BENCH_REF_BLAS_THREADS
  // overrides (on an oversubscribed machine OpenBLAS's spinning threads can make it far slower).
  int threads = static_cast<int>(pool ? pool->size() : ThreadPool::global()->size());
  if (const char* env = std::getenv("CMO_BENCH_REF_BLAS_THREADS")) threads = std::max(1, std::atoi(env));
  linalg::set_blas_threads(threads);
  int info = linalg::spotrf(false, n, a.data(), n);
  if (info == 0) info = linalg::spotri(false, n, a.data(), n);
  if (info == 0) {
    for (int64_t i = 0; i < n; ++i)  // the inverse's lower triangle → upper, for chol(·, upper)
      for (int64_t j = i + 1; j < n; ++j) a[static_cast<size_t>(i * n + j)] = a[static_cast<size_t>(j * n + i)];
    info = linalg::spotrf(true, n, a.data(), n);
  }
  linalg::set_blas_threads(1);
  if (info != 0) throw Error("ENOTPD", "SparseGPT (reference path): factorization failed, info " + std::to_string(info));
  f.u = a.data();
  return sparse_gpt_with_factor(weight, rows, n, f, o, pool);
}

}  // namespace cmo::kernels
