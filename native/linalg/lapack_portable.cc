// Portable rank-k update, triangular solve / multiply, Cholesky and triangular inverse: the fallback
// when no system BLAS/LAPACK is linked, and the tests' oracles. (The portable SGEMM is sgemm_blocked.cc.)
#include <algorithm>
#include <cmath>
#include <vector>

#include "../util/thread_pool.h"
#include "blas.h"

namespace cmo::linalg {

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

// Portable unblocked Cholesky / inverse (double accumulation), row-major, one triangle.
int spotrf_portable(bool upper, int64_t n, float* a, int64_t lda) {
  auto at = [&](int64_t i, int64_t j) -> float& { return upper ? a[j * lda + i] : a[i * lda + j]; };  // lower view
  for (int64_t j = 0; j < n; ++j) {
    double s = at(j, j);
    for (int64_t k = 0; k < j; ++k) s -= static_cast<double>(at(j, k)) * at(j, k);
    if (!(s > 0)) return static_cast<int>(j + 1);
    const double d = std::sqrt(s);
    at(j, j) = static_cast<float>(d);
    for (int64_t i = j + 1; i < n; ++i) {
      double t = at(i, j);
      for (int64_t k = 0; k < j; ++k) t -= static_cast<double>(at(i, k)) * at(j, k);
      at(i, j) = static_cast<float>(t / d);
    }
  }
  return 0;
}
int spotri_portable(bool upper, int64_t n, float* a, int64_t lda) {
  auto at = [&](int64_t i, int64_t j) -> float& { return upper ? a[j * lda + i] : a[i * lda + j]; };
  std::vector<double> li(static_cast<size_t>(n * n), 0.0);  // L⁻¹
  for (int64_t c = 0; c < n; ++c)
    for (int64_t i = c; i < n; ++i) {
      double s = i == c ? 1.0 : 0.0;
      for (int64_t k = c; k < i; ++k) s -= static_cast<double>(at(i, k)) * li[static_cast<size_t>(k * n + c)];
      if (at(i, i) == 0.0f) return static_cast<int>(i + 1);
      li[static_cast<size_t>(i * n + c)] = s / at(i, i);
    }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double s = 0;
      for (int64_t k = i; k < n; ++k) s += li[static_cast<size_t>(k * n + i)] * li[static_cast<size_t>(k * n + j)];
      at(i, j) = static_cast<float>(s);
    }
  return 0;
}

int strtri_upper_portable(int64_t n, float* a, int64_t lda) {
  std::vector<double> col(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t k = 0; k <= j; ++k) col[static_cast<size_t>(k)] = a[k * lda + j];
    if (col[static_cast<size_t>(j)] == 0.0) return static_cast<int>(j + 1);
    const double ujj = 1.0 / col[static_cast<size_t>(j)];
    // U_ij = −(Σ_{i<=k<j} U_ik·V_kj)·U_jj; ascending i only overwrites V_ij after its last use.
    for (int64_t i = 0; i < j; ++i) {
      const float* ui = a + i * lda;
      double s = 0;
      for (int64_t k = i; k < j; ++k) s += static_cast<double>(ui[k]) * col[static_cast<size_t>(k)];
      a[i * lda + j] = static_cast<float>(-s * ujj);
    }
    a[j * lda + j] = static_cast<float>(ujj);
  }
  return 0;
}

}  // namespace cmo::linalg
