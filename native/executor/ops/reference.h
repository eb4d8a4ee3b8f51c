// Plain scalar references of the kernels that have fast (sgemm / im2col) paths. They are the test
// oracle (native/test/executor_kernels_test.cc), written as directly from the op definitions as
// possible: no im2col, no BLAS, double accumulation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cmo::exec::ref {

struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t groups = 1;
};

// x [N, C, H, W], w [O, C/groups, KH, KW], bias [O] or empty -> y [N, O, OH, OW].
std::vector<float> conv2d(const std::vector<float>& x, int64_t N, int64_t C, int64_t H, int64_t W,
                          const std::vector<float>& w, int64_t O, int64_t KH, int64_t KW, const std::vector<float>& bias,
                          const Conv2dParams& p, int64_t& OH, int64_t& OW);

// x [N, C, H, W], w [C, O/groups, KH, KW] -> y [N, O, OH, OW] where OH = (H-1)*s + (KH-1)*d + 1 - pad_top - pad_bottom.
std::vector<float> conv_transpose2d(const std::vector<float>& x, int64_t N, int64_t C, int64_t H, int64_t W,
                                    const std::vector<float>& w, int64_t O, int64_t KH, int64_t KW,
                                    const std::vector<float>& bias, const Conv2dParams& p, int64_t& OH, int64_t& OW);

// a [B, M, K] · b [B, K, N] (optionally transposed per operand: a [B, K, M], b [B, N, K]).
std::vector<float> batched_matmul(const std::vector<float>& a, const std::vector<float>& b, int64_t B, int64_t M,
                                  int64_t K, int64_t N, bool ta, bool tb);

}  // namespace cmo::exec::ref
