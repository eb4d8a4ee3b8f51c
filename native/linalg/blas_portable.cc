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

// Triangle-restricted rank-k update. Blocked over k so a row of C stays in cache; single-threaded
// (callers tile and parallelise; see kernels/hessian.cc).
void ssyrk_portable(bool upper, bool trans, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, float beta,
                    float* c, int64_t ldc) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j0 = upper ? i : 0, j1 = upper ? n : i + 1;
    float* ci = c + i * ldc;
    for (int64_t j = j0; j < j1; ++j) ci[j] = beta == 0.0f ? 0.0f : ci[j] * beta;
  }
  if (!trans) {
    // C(i, j) += alpha · <A row i, A row j>
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j0 = upper ? i : 0, j1 = upper ? n : i + 1;
      const float* ai = a + i * lda;
      for (int64_t j = j0; j < j1; ++j) {
        const float* aj = a + j * lda;
        float s = 0.0f;
        for (int64_t p = 0; p < k; ++p) s += ai[p] * aj[p];
        c[i * ldc + j] += alpha * s;
      }
    }
    return;
  }
  // C(i, j) += alpha · Σ_p A(p, i)·A(p, j): rank-1 updates row by row of A (contiguous inner loop).
  for (int64_t p = 0; p < k; ++p) {
    const float* ap = a + p * lda;
    for (int64_t i = 0; i < n; ++i) {
      const float s = alpha * ap[i];
      if (s == 0.0f) continue;
      const int64_t j0 = upper ? i : 0, j1 = upper ? n : i + 1;
      float* ci = c + i * ldc;
      for (int64_t j = j0; j < j1; ++j) ci[j] += s * ap[j];
    }
  }
}

void strsm_right_upper_portable(bool trans_t, int64_t m, int64_t n, const float* t, int64_t ldt, float* b,
                                int64_t ldb) {
  for (int64_t r = 0; r < m; ++r) {
    float* x = b + r * ldb;
    if (!trans_t) {
      // x · T = y  ⇒  x_j = (y_j − Σ_{i<j} x_i T_ij) / T_jj, left to right.
      for (int64_t j = 0; j < n; ++j) {
        float s = x[j];
        for (int64_t i = 0; i < j; ++i) s -= x[i] * t[i * ldt + j];
        x[j] = s / t[j * ldt + j];
      }
    } else {
      // x · Tᵀ = y  ⇒  y_j = Σ_{i>=j} x_i T_ji  ⇒  x_j = (y_j − Σ_{i>j} x_i T_ji) / T_jj, right to left.
      for (int64_t j = n - 1; j >= 0; --j) {
        float s = x[j];
        const float* tj = t + j * ldt;
        for (int64_t i = j + 1; i < n; ++i) s -= x[i] * tj[i];
        x[j] = s / tj[j];
      }
    }
  }
}

void strmm_left_upper_portable(int64_t m, int64_t n, const float* t, int64_t ldt, float* b, int64_t ldb) {
  // Row i of T·B only reads rows >= i of B: top to bottom in place.
  for (int64_t i = 0; i < m; ++i) {
    float* bi = b + i * ldb;
    const float tii = t[i * ldt + i];
    for (int64_t j = 0; j < n; ++j) bi[j] *= tii;
    for (int64_t p = i + 1; p < m; ++p) {
      const float tip = t[i * ldt + p];
      if (tip == 0.0f) continue;
      const float* bp = b + p * ldb;
      for (int64_t j = 0; j < n; ++j) bi[j] += tip * bp[j];
    }
  }
}

}  // namespace cmo::linalg
