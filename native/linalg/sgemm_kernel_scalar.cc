// The plain C++ micro-kernel: any CPU, any compiler. 4×8 so that the compiler's baseline vector unit
// (SSE2 / NEON) can still do something with the inner row.
#include "sgemm_kernels.h"

namespace cmo::linalg::detail {
namespace {

constexpr int kMr = 4, kNr = 8;

void kernel_scalar(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta) {
  float acc[kMr][kNr] = {};
  for (int64_t p = 0; p < kc; ++p, a += kMr, b += kNr)
    for (int i = 0; i < kMr; ++i)
      for (int j = 0; j < kNr; ++j) acc[i][j] += a[i] * b[j];
  for (int i = 0; i < kMr; ++i)
    for (int j = 0; j < kNr; ++j) {
      float& dst = c[i * ldc + j];
      dst = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * dst;
    }
}

}  // namespace

const GemmKernel& scalar_kernel() {
  static const GemmKernel k{"scalar", kMr, kNr, 256, kernel_scalar};
  return k;
}

}  // namespace cmo::linalg::detail
