#include <cmath>
#include <vector>

#include "check.h"
#include "kernels/synthetic.h"
#include "util/fp16.h"

using cmo::kernels::SyntheticKind;
using cmo::kernels::SyntheticParams;

TEST(synthetic_is_independent_of_chunking) {
  SyntheticParams p;
  p.fan_in = 1280;
  p.seed = 42;
  const uint64_t n = 200003;
  std::vector<uint16_t> whole(n), pieces(n);
  cmo::kernels::synthetic_fp16(p, 0, n, whole.data());
  // Odd split points that cross stream-chunk boundaries.
  uint64_t cuts[] = {0, 1, 65535, 65537, 131072, 150001, n};
  for (size_t i = 0; i + 1 < sizeof(cuts) / sizeof(cuts[0]); ++i)
    cmo::kernels::synthetic_fp16(p, cuts[i], cuts[i + 1] - cuts[i], pieces.data() + cuts[i]);
  CHECK(whole == pieces);
}

TEST(synthetic_weight_std_follows_fan_in) {
  SyntheticParams p;
  p.fan_in = 2560 * 9;
  p.seed = 7;
  const uint64_t n = 1 << 20;
  std::vector<float> v(n);
  cmo::kernels::synthetic_f32(p, 0, n, v.data());
  double sum = 0, sq = 0;
  for (float x : v) {
    sum += x;
    sq += static_cast<double>(x) * x;
  }
  double mean = sum / n, std = std::sqrt(sq / n - mean * mean);
  double expected = std::sqrt((1 - p.outlier_fraction) + p.outlier_fraction * 64.0) / std::sqrt(double(p.fan_in));
  CHECK_NEAR(mean, 0.0, 0.01 * expected);
  CHECK_NEAR(std / expected, 1.0, 0.01);
}

TEST(synthetic_norm_is_centered_on_one_and_seeds_differ) {
  SyntheticParams a, b;
  a.kind = b.kind = SyntheticKind::Norm;
  a.seed = 1;
  b.seed = 2;
  std::vector<float> va(4096), vb(4096);
  cmo::kernels::synthetic_f32(a, 0, va.size(), va.data());
  cmo::kernels::synthetic_f32(b, 0, vb.size(), vb.data());
  double mean = 0;
  for (float x : va) mean += x;
  CHECK_NEAR(mean / va.size(), 1.0, 0.02);
  CHECK(va != vb);
}

CMO_TEST_MAIN()
