#include "fp16_histogram_simd.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CMO_FP16_HISTOGRAM_AVX512 1
#endif

namespace cmo::kernels::fp16_histogram_simd {

#ifdef CMO_FP16_HISTOGRAM_AVX512

bool avx512_supported() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return yes;
}

// Compress into a register, then a full-width store: the memory form of VPCOMPRESSD is microcoded
// and slow on AMD Zen 4.
__attribute__((target("avx512f"))) size_t compact_nonzero_avx512(const uint32_t* counts, size_t first, size_t last,
                                                                 uint32_t* keys, uint32_t* found, uint32_t* zero) {
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  size_t m = 0;
  for (size_t key = first; key <= last; key += 16) {
    const __m512i c = _mm512_loadu_si512(counts + key);
    const __mmask16 nz = _mm512_test_epi32_mask(c, c);
    if (nz == 0) continue;
    const __m512i k = _mm512_add_epi32(iota, _mm512_set1_epi32(static_cast<int>(key)));
    _mm512_storeu_si512(keys + m, _mm512_maskz_compress_epi32(nz, k));
    _mm512_storeu_si512(found + m, _mm512_maskz_compress_epi32(nz, c));
    if (zero) _mm512_storeu_si512(zero + key, _mm512_setzero_si512());
    m += static_cast<size_t>(__builtin_popcount(nz));
  }
  return m;
}

// The maskz forms with all lanes set, not the plain ones (nor the 512 -> 256 casts): GCC 12 builds
// those from _mm*_undefined_*() and warns (-Wmaybe-uninitialized) in every caller.
__attribute__((target("avx512f"))) void expand_avx512(const uint32_t* keys, const uint32_t* found, size_t m,
                                                      double* values, double* counts, uint16_t* keys16) {
  const __m512i sign = _mm512_set1_epi32(0x8000);
  for (size_t i = 0; i < m; i += 16) {
    const __m512i k = _mm512_loadu_si512(keys + i);
    // fp16_from_order_key: key >= 0x8000 ? key - 0x8000 : 0x8000 | (0x8000 - key).
    const __mmask16 positive = _mm512_cmpge_epu32_mask(k, sign);
    const __m512i bits = _mm512_mask_blend_epi32(positive, _mm512_or_si512(sign, _mm512_sub_epi32(sign, k)),
                                                 _mm512_sub_epi32(k, sign));
    const __m512 f = _mm512_maskz_cvtph_ps(0xFFFF, _mm512_maskz_cvtepi32_epi16(0xFFFF, bits));
    const __m512i c = _mm512_loadu_si512(found + i);
    const size_t left = m - i;
    const __mmask8 lo = left >= 8 ? 0xFF : static_cast<__mmask8>((1u << left) - 1);
    const __mmask8 hi = left >= 16 ? 0xFF : left > 8 ? static_cast<__mmask8>((1u << (left - 8)) - 1) : 0;
    const __m256 f_lo = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, _mm512_castps_pd(f), 0));
    const __m256 f_hi = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, _mm512_castps_pd(f), 1));
    _mm512_mask_storeu_pd(values + i, lo, _mm512_maskz_cvtps_pd(0xFF, f_lo));
    _mm512_mask_storeu_pd(values + i + 8, hi, _mm512_maskz_cvtps_pd(0xFF, f_hi));
    _mm512_mask_storeu_pd(counts + i, lo, _mm512_maskz_cvtepu32_pd(0xFF, _mm512_maskz_extracti64x4_epi64(0xFF, c, 0)));
    _mm512_mask_storeu_pd(counts + i + 8, hi, _mm512_maskz_cvtepu32_pd(0xFF, _mm512_maskz_extracti64x4_epi64(0xFF, c, 1)));
    if (keys16) {
      const __mmask16 all = left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1);
      _mm512_mask_cvtepi32_storeu_epi16(keys16 + i, all, k);
    }
  }
}

#else

bool avx512_supported() { return false; }
size_t compact_nonzero_avx512(const uint32_t*, size_t, size_t, uint32_t*, uint32_t*, uint32_t*) { return 0; }
void expand_avx512(const uint32_t*, const uint32_t*, size_t, double*, double*, uint16_t*) {}

#endif

}  // namespace cmo::kernels::fp16_histogram_simd
