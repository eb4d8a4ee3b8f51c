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

// 8 rows × 8 columns of a row-major source, transposed into dst[p·mr + i] (i < 8, p < 8).
__attribute__((target("avx2"))) inline void transpose8_store(const float* src, int64_t lda, int64_t mr, float* dst) {
  __m256 r[8];
  for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(src + j * lda);
  __m256 t[8], u[8];
  for (int j = 0; j < 8; j += 2) {
    t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);      // a0 b0 a1 b1 | a4 b4 a5 b5
    t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);  // a2 b2 a3 b3 | a6 b6 a7 b7
  }
  for (int j = 0; j < 8; j += 4) {
    u[j] = _mm256_shuffle_ps(t[j], t[j + 2], 0x44);      // a0 b0 c0 d0 | a4 b4 c4 d4
    u[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], 0xEE);  // a1 b1 c1 d1 | a5 ..
    u[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0x44);
    u[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    _mm256_storeu_ps(dst + c * mr, _mm256_permute2f128_ps(u[c], u[c + 4], 0x20));        // column c
    _mm256_storeu_ps(dst + (c + 4) * mr, _mm256_permute2f128_ps(u[c], u[c + 4], 0x31));  // column c + 4
  }
}

// 4 rows × 8 columns, transposed into dst[p·mr + i] (i < 4, p < 8).
__attribute__((target("avx2"))) inline void transpose4x8_store(const float* src, int64_t lda, int64_t mr, float* dst) {
  const __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lda), r2 = _mm256_loadu_ps(src + 2 * lda),
               r3 = _mm256_loadu_ps(src + 3 * lda);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
               t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 u[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE), _mm256_shuffle_ps(t1, t3, 0x44),
                       _mm256_shuffle_ps(t1, t3, 0xEE)};
  for (int c = 0; c < 4; ++c) {
    _mm_storeu_ps(dst + c * mr, _mm256_castps256_ps128(u[c]));
    _mm_storeu_ps(dst + (c + 4) * mr, _mm256_extractf128_ps(u[c], 1));
  }
}

// dst[p·mr + i] = src[i·lda + p] for i < rows (<= mr), p < kc: the A micro-panel of the blocked SGEMM
// from a row-major A, 8×8 / 4×8 register transposes instead of one strided store per element. A copy
// only: the same bits as the scalar loop (pack_a's reference), for every kernel's MR.
__attribute__((target("avx2"))) void pack_rows_avx2(const float* src, int64_t lda, int rows, int64_t kc, int mr, float* dst) {
  const int64_t p8 = kc / 8 * 8;
  int i = 0;
  for (; i + 8 <= rows; i += 8)
    for (int64_t p = 0; p < p8; p += 8) transpose8_store(src + i * lda + p, lda, mr, dst + p * mr + i);
  for (; i + 4 <= rows; i += 4)
    for (int64_t p = 0; p < p8; p += 8) transpose4x8_store(src + i * lda + p, lda, mr, dst + p * mr + i);
  for (; i < rows; ++i)
    for (int64_t p = 0; p < p8; ++p) dst[p * mr + i] = src[i * lda + p];
  for (int r = 0; r < rows; ++r)
    for (int64_t p = p8; p < kc; ++p) dst[p * mr + r] = src[r * lda + p];
}

}  // namespace

PackRows pack_rows_simd() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") ? pack_rows_avx2 : nullptr;
}

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
PackRows pack_rows_simd() { return nullptr; }
const GemmKernel* avx2_kernel() { return nullptr; }
const GemmKernel* avx512_kernel() { return nullptr; }
}  // namespace cmo::linalg::detail

#endif
