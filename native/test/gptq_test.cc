// GPTQ fast path against the float64 reference (coremltools' GPTQ._compress_impl as written):
// identical codes, weights within 1e-5 of max|W|, per channel / per block (dynamic and static
// groups), symmetric and affine, activation order.
#include <cmath>
#include <random>

#include "../kernels/hessian.h"
#include "../kernels/sparsegpt.h"
#include "check.h"
#include "random_data.h"

using namespace cmo::kernels;

namespace {
using cmo::test::randn;
}  // namespace

TEST(gptq_matches_reference_in_every_mode) {
  const int64_t rows = 12, n = 192, samples = 600;
  // Columns with different scales so act-order's permutation is not the identity; one dead column.
  auto x = randn(static_cast<size_t>(samples * n), 1);
  for (int64_t s = 0; s < samples; ++s)
    for (int64_t c = 0; c < n; ++c) x[static_cast<size_t>(s * n + c)] *= c == 50 ? 0.0f : 0.5f + static_cast<float>((c * 37) % 11) / 5.0f;
  Hessian h(n);
  h.add_rows(x.data(), samples, 3);
  auto w = randn(static_cast<size_t>(rows * n), 2);
  std::vector<double> hd;
  {
    auto d = h.dense();
    hd.assign(d.begin(), d.end());
  }
  int cases = 0;
  for (int bits : {4, 3})
    for (int sym = 0; sym < 2; ++sym)
      for (int64_t gs : {int64_t{0}, int64_t{32}, int64_t{-1}})
        for (int act = 0; act < 2; ++act)
          for (int stat = 0; stat < 2; ++stat) {
            if (stat && gs <= 0) continue;
            GptqOptions o;
            o.quant = QuantGrid{bits, sym == 1, gs};
            o.act_order = act == 1;
            o.static_groups = stat == 1;
            o.block_size = 64;
            auto fast = gptq(w.data(), rows, n, h, o);
            auto ref = gptq_ref(w.data(), rows, n, hd, o);
            ++cases;
            CHECK(fast.q == ref.q);
            CHECK(fast.perm == ref.perm);
            CHECK(fast.group_index == ref.group_index);
            CHECK_EQ(fast.dead_columns, int64_t{1});
            double m = 0, wmax = 0;
            for (size_t i = 0; i < fast.weight.size(); ++i) {
              m = std::max(m, static_cast<double>(std::fabs(fast.weight[i] - ref.weight[i])));
              wmax = std::max(wmax, static_cast<double>(std::fabs(ref.weight[i])));
            }
            CHECK(m / wmax < 1e-5);
            CHECK_NEAR(fast.error, ref.error, 1e-4 * ref.error);
            // Dequantization identity with the reported grids.
            const int64_t groups = static_cast<int64_t>(fast.scales.size()) / rows;
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t c = 0; c < n; ++c) {
                const size_t gi = static_cast<size_t>(r * groups + (gs > 0 ? fast.group_index[static_cast<size_t>(c)] : 0));
                const size_t e = static_cast<size_t>(r * n + c);
                CHECK_EQ(fast.weight[e], fast.scales[gi] * (static_cast<float>(fast.q[e]) - fast.zero_points[gi]));
              }
            if (act) CHECK(fast.perm.size() == static_cast<size_t>(n) && fast.perm[0] != 0);
          }
  CHECK_EQ(cases, 32);
}

TEST(gptq_beats_round_to_nearest) {
  // The point of GPTQ: lower output error than rounding each weight to its grid.
  const int64_t rows = 16, n = 128, samples = 500;
  auto z = randn(static_cast<size_t>(samples * n), 3);
  std::vector<float> x(z.size());
  for (int64_t s = 0; s < samples; ++s)  // neighbouring columns correlated
    for (int64_t c = 0; c < n; ++c)
      x[static_cast<size_t>(s * n + c)] = z[static_cast<size_t>(s * n + c)] + (c ? 0.8f * z[static_cast<size_t>(s * n + c - 1)] : 0.0f);
  Hessian h(n);
  h.add_rows(x.data(), samples, 1);
  auto w = randn(static_cast<size_t>(rows * n), 4);
  GptqOptions o;
  o.quant = QuantGrid{3, false, 0};
  auto r = gptq(w.data(), rows, n, h, o);
  std::vector<float> rtn(w.size());
  for (int64_t row = 0; row < rows; ++row)
    for (int64_t c = 0; c < n; ++c) {
      const float s = r.scales[static_cast<size_t>(row)], zp = r.zero_points[static_cast<size_t>(row)];
      const float q = std::clamp(std::nearbyint(w[static_cast<size_t>(row * n + c)] / s) + zp, 0.0f, 7.0f);
      rtn[static_cast<size_t>(row * n + c)] = s * (q - zp);
    }
  const double e_gptq = relative_reconstruction_error(w.data(), r.weight.data(), rows, n, h);
  const double e_rtn = relative_reconstruction_error(w.data(), rtn.data(), rows, n, h);
  CHECK(e_gptq < 0.8 * e_rtn);
}

CMO_TEST_MAIN()
