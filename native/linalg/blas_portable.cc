// Portable GEMM: cache-blocked, threaded over rows of C. Not a BLAS replacement, but within a small
// factor of one on the sizes the executor and SparseGPT use, and it has no dependencies.
#include <algorithm>
#include <vector>

#include "../util/thread_pool.h"
#include "blas.h"

namespace cmo::linalg {

void sgemm_portable(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                    int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  constexpr int64_t kBlockK = 256;
  constexpr int64_t kRowsPerTask = 8;
  const int64_t tasks = (m + kRowsPerTask - 1) / kRowsPerTask;
  parallel_for(static_cast<size_t>(tasks), [&](size_t t) {
    const int64_t r0 = static_cast<int64_t>(t) * kRowsPerTask;
    const int64_t r1 = std::min(m, r0 + kRowsPerTask);
    std::vector<float> brow(static_cast<size_t>(n));
    for (int64_t i = r0; i < r1; ++i) {
      float* ci = c + i * ldc;
      if (beta == 0.0f) {
        std::fill(ci, ci + n, 0.0f);
      } else if (beta != 1.0f) {
        for (int64_t j = 0; j < n; ++j) ci[j] *= beta;
      }
    }
    for (int64_t p0 = 0; p0 < k; p0 += kBlockK) {
      const int64_t p1 = std::min(k, p0 + kBlockK);
      for (int64_t i = r0; i < r1; ++i) {
        float* ci = c + i * ldc;
        for (int64_t p = p0; p < p1; ++p) {
          const float aip = alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]);
          if (aip == 0.0f) continue;
          if (!trans_b) {
            const float* bp = b + p * ldb;
            for (int64_t j = 0; j < n; ++j) ci[j] += aip * bp[j];
          } else {
            for (int64_t j = 0; j < n; ++j) ci[j] += aip * b[j * ldb + p];
          }
        }
      }
    }
  });
}

}  // namespace cmo::linalg
