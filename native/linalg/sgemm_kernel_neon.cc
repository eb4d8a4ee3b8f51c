// AArch64 micro-kernel (NEON is part of the base ISA there, so no run-time check is needed).
// 8×12: 24 q-register accumulators, 3 for B, 2 for A (lane-indexed FMAs).
#include "sgemm_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

namespace cmo::linalg::detail {
namespace {

void kernel_neon(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta) {
  float32x4_t acc[8][3];
  for (int i = 0; i < 8; ++i) acc[i][0] = acc[i][1] = acc[i][2] = vdupq_n_f32(0.0f);
  for (int64_t p = 0; p < kc; ++p, a += 8, b += 12) {
    const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
    const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
#define CMO_NEON_ROW(i, av, lane)                             \
  acc[i][0] = vfmaq_laneq_f32(acc[i][0], b0, av, lane);       \
  acc[i][1] = vfmaq_laneq_f32(acc[i][1], b1, av, lane);       \
  acc[i][2] = vfmaq_laneq_f32(acc[i][2], b2, av, lane);
    CMO_NEON_ROW(0, a0, 0) CMO_NEON_ROW(1, a0, 1) CMO_NEON_ROW(2, a0, 2) CMO_NEON_ROW(3, a0, 3)
    CMO_NEON_ROW(4, a1, 0) CMO_NEON_ROW(5, a1, 1) CMO_NEON_ROW(6, a1, 2) CMO_NEON_ROW(7, a1, 3)
#undef CMO_NEON_ROW
  }
  for (int i = 0; i < 8; ++i) {
    float* ci = c + i * ldc;
    for (int h = 0; h < 3; ++h) {
      float32x4_t v = vmulq_n_f32(acc[i][h], alpha);
      if (beta != 0.0f) v = vfmaq_n_f32(v, vld1q_f32(ci + 4 * h), beta);
      vst1q_f32(ci + 4 * h, v);
    }
  }
}

}  // namespace

const GemmKernel* neon_kernel() {
  static const GemmKernel k{"neon", 8, 12, 256, kernel_neon};
  return &k;
}

}  // namespace cmo::linalg::detail

#else

namespace cmo::linalg::detail {
const GemmKernel* neon_kernel() { return nullptr; }
}  // namespace cmo::linalg::detail

#endif
