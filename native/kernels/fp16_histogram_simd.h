// AVX-512 pieces of Fp16Histogram's collect (kmeans1d.cc): the portable loop there is the
// reference they are tested against (test/kmeans1d_test.cc). Internal to the k-means kernels.
#pragma once
#include <cstddef>
#include <cstdint>

namespace cmo::kernels::fp16_histogram_simd {

// Whether this CPU (and OS) runs the AVX-512 collect.
bool avx512_supported();

// The non-zero counters of counts[first, last] (first a multiple of 16; counts readable up to
// last + 15): their keys and counts in key order, written to keys / found (each with room for
// last - first + 16 entries; lanes past the result may be written). zero != nullptr: every
// 16-counter block holding one is zeroed there. Returns how many were found.
size_t compact_nonzero_avx512(const uint32_t* counts, size_t first, size_t last, uint32_t* keys, uint32_t* found,
                              uint32_t* zero);

// values[i]: the fp16 value of order key keys[i] (±0 as +0) as a double; counts[i] = found[i];
// keys16[i] = keys[i] when keys16 is not null. Input arrays readable up to m rounded up to 16.
void expand_avx512(const uint32_t* keys, const uint32_t* found, size_t m, double* values, double* counts,
                   uint16_t* keys16);

}  // namespace cmo::kernels::fp16_histogram_simd
