#include "gemm.h"

#include <algorithm>
#include <mutex>

#include "../../linalg/blas.h"
#include "../../util/thread_pool.h"

#if defined(CMO_USE_OPENBLAS)
extern "C" void openblas_set_num_threads(int num_threads);
#endif

namespace cmo::exec {

void use_single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] {
#if defined(CMO_USE_OPENBLAS)
    openblas_set_num_threads(1);
#endif
  });
}

void gemm(unsigned threads, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  unsigned pool = threads ? threads : ThreadPool::global()->size();
  if (linalg::executor_prefers_portable_gemm()) {
    // The portable SGEMM splits its own blocks over the pool (it knows its tile sizes).
    linalg::sgemm_portable(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, pool);
    return;
  }
  // About 4 MFLOP per part keeps the hand-off cost negligible.
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const bool split_m = m >= n;
  const int64_t dim = split_m ? m : n;
  int64_t parts = std::min<int64_t>({static_cast<int64_t>(pool), static_cast<int64_t>(flops / 4e6) + 1, std::max<int64_t>(1, dim / 16)});
  if (parts <= 1) {
    linalg::sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const int64_t step = (dim + parts - 1) / parts;
  parallel_for(
      static_cast<size_t>(parts),
      [&](size_t p) {
        int64_t lo = static_cast<int64_t>(p) * step, hi = std::min(dim, lo + step);
        if (lo >= hi) return;
        if (split_m) {
          // Rows lo..hi of op(A): A rows (no transpose) or A columns (transposed).
          const float* ap = ta ? a + lo : a + lo * lda;
          linalg::sgemm(ta, tb, hi - lo, n, k, alpha, ap, lda, b, ldb, beta, c + lo * ldc, ldc);
        } else {
          const float* bp = tb ? b + lo * ldb : b + lo;
          linalg::sgemm(ta, tb, m, hi - lo, k, alpha, a, lda, bp, ldb, beta, c + lo, ldc);
        }
      },
      1, pool);
}

void gemm_batch(unsigned threads, bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t count, const float* const* a,
                int64_t lda, const float* const* b, int64_t ldb, float* const* c, int64_t ldc) {
  unsigned pool = threads ? threads : ThreadPool::global()->size();
  if (count == 1) {
    gemm(threads, ta, tb, m, n, k, 1.f, a[0], lda, b[0], ldb, 0.f, c[0], ldc);
    return;
  }
  if (linalg::executor_prefers_portable_gemm()) {
    if (count < static_cast<int64_t>(pool)) {
      // Fewer entries than threads: each product uses the whole pool in turn.
      for (int64_t i = 0; i < count; ++i) linalg::sgemm_portable(ta, tb, m, n, k, 1.f, a[i], lda, b[i], ldb, 0.f, c[i], ldc, pool);
      return;
    }
    parallel_for(
        static_cast<size_t>(count),
        [&](size_t i) { linalg::sgemm_portable(ta, tb, m, n, k, 1.f, a[i], lda, b[i], ldb, 0.f, c[i], ldc, 1); }, 1, pool);
    return;
  }
  parallel_for(
      static_cast<size_t>(count),
      [&](size_t i) { linalg::sgemm(ta, tb, m, n, k, 1.f, a[i], lda, b[i], ldb, 0.f, c[i], ldc); }, 1, pool);
}

}  // namespace cmo::exec
