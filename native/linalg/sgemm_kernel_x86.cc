// x86-64 micro-kernels, compiled for AVX2+FMA and AVX-512F through function target attributes so the
// rest of the build keeps the baseline ISA; sgemm_blocked.cc only calls them when the CPU has them.
// The FMAs are explicit intrinsics (the global -ffp-contract=off forbids the compiler's own fusion).
#include "sgemm_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

namespace cmo::linalg::detail {
namespace {

// 6×16: 12 ymm accumulators + 2 for B + 1 broadcast of A.
__attribute__((target("avx2,fma"))) void kernel_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                                      float alpha, float beta) {
  __m256 acc[6][2];
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p, a += 6, b += 16) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    for (int i = 0; i < 6; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  for (int i = 0; i < 6; ++i) {
    float* ci = c + i * ldc;
    for (int h = 0; h < 2; ++h) {
      __m256 v = _mm256_mul_ps(va, acc[i][h]);
      if (beta != 0.0f) v = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8 * h), v);
      _mm256_storeu_ps(ci + 8 * h, v);
    }
  }
}

// 12×32: 24 zmm accumulators + 2 for B + 1 broadcast of A (of 32 registers).
__attribute__((target("avx512f"))) void kernel_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                                       float alpha, float beta) {
  __m512 acc[12][2];
  for (int i = 0; i < 12; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p, a += 12, b += 32) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
    for (int i = 0; i < 12; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int i = 0; i < 12; ++i) {
    float* ci = c + i * ldc;
    for (int h = 0; h < 2; ++h) {
      __m512 v = _mm512_mul_ps(va, acc[i][h]);
      if (beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + 16 * h), v);
      _mm512_storeu_ps(ci + 16 * h, v);
    }
  }
}

}  // namespace

const GemmKernel* avx2_kernel() {
  static const GemmKernel k{"avx2+fma", 6, 16, 256, kernel_avx2};
  return &k;
}
const GemmKernel* avx512_kernel() {
  static const GemmKernel k{"avx512", 12, 32, 192, kernel_avx512};
  return &k;
}

}  // namespace cmo::linalg::detail

#else

namespace cmo::linalg::detail {
const GemmKernel* avx2_kernel() { return nullptr; }
const GemmKernel* avx512_kernel() { return nullptr; }
}  // namespace cmo::linalg::detail

#endif
