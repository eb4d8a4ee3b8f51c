// Per-group LUT builders for palettization modes "uniform" and "unique", plus the shared
// description of one group's data. Numerics follow numpy exactly as coremltools runs them
// (coreml-format.md §5.2): fp16 weights use fp16 arithmetic (each op rounded to fp16), and the
// uniform LUT is computed in float64 then cast once to the weight dtype.
#pragma once
#include <cstddef>
#include <cstdint>

namespace cmo::kernels {

// One group's elements in coremltools order (channel axis moved to 0, row-major). Exactly one of
// f16 (fp16 bit patterns) / f32 is set. Vectors (cluster_dim V > 1) are V consecutive elements.
struct GroupData {
  const uint16_t* f16 = nullptr;
  const float* f32 = nullptr;
  size_t count = 0;  // elements (= vectors · V)
  int V = 1;
  bool is_f16() const { return f16 != nullptr; }
  float value(size_t i) const;  // element i as float (exact for fp16)
};

// Correctly rounded double -> fp16 bits (numpy's float64.astype(float16)); avoids the double
// rounding of double -> float -> half.
uint16_t double_to_half(double d);

// mode "uniform" (cluster_dim 1): lut[0..2^nbits) and one index per element.
// lut values are already rounded to the weight dtype (exact in float).
void uniform_group(const GroupData& g, int nbits, float* lut, uint8_t* indices);

// mode "unique": number of distinct values (vectors when V > 1) of the group, ±0 merged.
size_t unique_count(const GroupData& g);
// Smallest nbits in {1,2,3,4,6,8} with 2^nbits >= count, or 0 when count > 256 (coremltools
// skips the weight then).
int unique_nbits_for(size_t count);
// LUT = sorted distinct values/vectors (lexicographic for vectors), zero-padded to 2^nbits rows of
// V; index = rank. Requires unique_count(g) <= 2^nbits.
void unique_group(const GroupData& g, int nbits, float* lut, uint8_t* indices);

}  // namespace cmo::kernels
