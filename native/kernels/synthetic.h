// Deterministic synthetic weights for benchmarks and tests: full-size models (SDXL UNet, 2.6 B
// weights) are generated chunk by chunk straight into the weight file, never held whole in memory.
#pragma once
#include <cstdint>
#include <vector>

namespace cmo::kernels {

enum class SyntheticKind : uint8_t {
  Weight,  // heavy-tailed around 0 with std = gain / sqrt(fan_in), like trained conv/linear weights
  Bias,    // small values around 0
  Norm,    // scale parameters of norm layers, around 1
};

struct SyntheticParams {
  SyntheticKind kind = SyntheticKind::Weight;
  uint64_t fan_in = 1;
  uint64_t seed = 0;           // per-tensor seed; the output depends on (seed, element index) only
  double outlier_fraction = 0.002;  // share of elements drawn with 8x the std (trained nets have them)
};

// Fills out[0, count) with fp16 bit patterns of element indices [first, first + count) of the tensor.
// Deterministic whatever the chunking or thread count: chunk k of 2^16 elements has its own stream.
void synthetic_fp16(const SyntheticParams& params, uint64_t first, uint64_t count, uint16_t* out);

// Same values as float32 (before fp16 rounding), for tests.
void synthetic_f32(const SyntheticParams& params, uint64_t first, uint64_t count, float* out);

}  // namespace cmo::kernels
