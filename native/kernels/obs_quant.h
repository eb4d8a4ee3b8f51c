// GPTQ's min/max quantizer (quant.py / coremltools _quant.py), in float32 one operation at a time as
// torch evaluates it. Shared by the fast SparseGPT/GPTQ path; the float64 reference has its own.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace cmo::kernels {

struct QParams {
  float scale, zero;
};

inline QParams find_qparams(const float* x, int64_t len, int maxq, bool symmetric) {
  float lo = 0.0f, hi = 0.0f;  // min(min x, 0), max(max x, 0)
  for (int64_t i = 0; i < len; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (symmetric) {
    hi = std::max(std::fabs(lo), hi);
    if (lo < 0.0f) lo = -hi;
  }
  if (lo == 0.0f && hi == 0.0f) {
    lo = -1.0f;
    hi = 1.0f;
  }
  const float scale = (hi - lo) / static_cast<float>(maxq);
  const float zero = symmetric ? static_cast<float>(maxq + 1) / 2.0f : std::nearbyint(-lo / scale);
  return {scale, zero};
}

// clamp(round(x/scale) + zero, 0, maxq); round half to even like torch.round.
inline float quantize_code(float x, float scale, float zero, float maxq) {
  return std::clamp(std::nearbyint(x / scale) + zero, 0.0f, maxq);
}
inline float quantize_value(float x, float scale, float zero, float maxq) {
  return scale * (quantize_code(x, scale, zero, maxq) - zero);
}

}  // namespace cmo::kernels
