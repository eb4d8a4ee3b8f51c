#include "reference.h"

namespace cmo::exec::ref {

std::vector<float> conv2d(const std::vector<float>& x, int64_t N, int64_t C, int64_t H, int64_t W,
                          const std::vector<float>& w, int64_t O, int64_t KH, int64_t KW, const std::vector<float>& bias,
                          const Conv2dParams& p, int64_t& OH, int64_t& OW) {
  OH = (H + p.pad_top + p.pad_bottom - ((KH - 1) * p.dil_h + 1)) / p.stride_h + 1;
  OW = (W + p.pad_left + p.pad_right - ((KW - 1) * p.dil_w + 1)) / p.stride_w + 1;
  const int64_t cg = C / p.groups, og = O / p.groups;
  std::vector<float> y(static_cast<size_t>(N * O * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j) {
          double acc = bias.empty() ? 0.0 : bias[o];
          int64_t g = o / og;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t ki = 0; ki < KH; ++ki)
              for (int64_t kj = 0; kj < KW; ++kj) {
                int64_t yi = i * p.stride_h - p.pad_top + ki * p.dil_h;
                int64_t xj = j * p.stride_w - p.pad_left + kj * p.dil_w;
                if (yi < 0 || yi >= H || xj < 0 || xj >= W) continue;
                acc += static_cast<double>(x[((n * C + g * cg + c) * H + yi) * W + xj]) * w[((o * cg + c) * KH + ki) * KW + kj];
              }
          y[((n * O + o) * OH + i) * OW + j] = static_cast<float>(acc);
        }
  return y;
}

std::vector<float> conv_transpose2d(const std::vector<float>& x, int64_t N, int64_t C, int64_t H, int64_t W,
                                    const std::vector<float>& w, int64_t O, int64_t KH, int64_t KW,
                                    const std::vector<float>& bias, const Conv2dParams& p, int64_t& OH, int64_t& OW) {
  OH = (H - 1) * p.stride_h + (KH - 1) * p.dil_h + 1 - p.pad_top - p.pad_bottom;
  OW = (W - 1) * p.stride_w + (KW - 1) * p.dil_w + 1 - p.pad_left - p.pad_right;
  const int64_t cg = C / p.groups, og = O / p.groups;
  std::vector<double> acc(static_cast<size_t>(N * O * OH * OW), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      int64_t g = c / cg;
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j)
          for (int64_t oo = 0; oo < og; ++oo)
            for (int64_t ki = 0; ki < KH; ++ki)
              for (int64_t kj = 0; kj < KW; ++kj) {
                int64_t yi = i * p.stride_h + ki * p.dil_h - p.pad_top;
                int64_t xj = j * p.stride_w + kj * p.dil_w - p.pad_left;
                if (yi < 0 || yi >= OH || xj < 0 || xj >= OW) continue;
                int64_t o = g * og + oo;
                acc[((n * O + o) * OH + yi) * OW + xj] +=
                    static_cast<double>(x[((n * C + c) * H + i) * W + j]) * w[((c * og + oo) * KH + ki) * KW + kj];
              }
    }
  std::vector<float> y(acc.size());
  for (size_t k = 0; k < acc.size(); ++k) {
    int64_t o = static_cast<int64_t>(k / static_cast<size_t>(OH * OW)) % O;
    y[k] = static_cast<float>(acc[k] + (bias.empty() ? 0.0 : bias[o]));
  }
  return y;
}

std::vector<float> batched_matmul(const std::vector<float>& a, const std::vector<float>& b, int64_t B, int64_t M,
                                  int64_t K, int64_t N, bool ta, bool tb) {
  std::vector<float> y(static_cast<size_t>(B * M * N));
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          float av = ta ? a[(bi * K + k) * M + i] : a[(bi * M + i) * K + k];
          float bv = tb ? b[(bi * N + j) * K + k] : b[(bi * K + k) * N + j];
          acc += static_cast<double>(av) * bv;
        }
        y[(bi * M + i) * N + j] = static_cast<float>(acc);
      }
  return y;
}

}  // namespace cmo::exec::ref
