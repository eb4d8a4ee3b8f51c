// Hessian accumulation and the inverse factor: tiled SYRK vs a float64 reference, the conv unfold
// vs a direct convolution, one-Cholesky-plus-inverse vs the reference's three factorizations, and the
// BLAS façade calls added for them vs their portable versions.
#include <cmath>
#include <random>

#include "../kernels/hessian.h"
#include "../kernels/sparsegpt.h"
#include "../linalg/blas.h"
#include "../util/error.h"
#include "check.h"
#include "random_data.h"

using namespace cmo::kernels;

namespace {
using cmo::test::randn;
double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}
// max |a − b| / max |b|
double rel_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m / max_abs(b);
}
std::vector<double> upper_of(const float* u, int64_t n) {
  std::vector<double> out(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j) out[static_cast<size_t>(i * n + j)] = u[i * n + j];
  return out;
}
}  // namespace

TEST(blas_syrk_trsm_trmm_match_portable_and_naive) {
  const int64_t n = 37, k = 23, ld = 41;
  auto a = randn(static_cast<size_t>(n * ld), 1), at = randn(static_cast<size_t>(k * ld), 2);
  for (int upper = 0; upper < 2; ++upper)
    for (int trans = 0; trans < 2; ++trans) {
      auto c0 = randn(static_cast<size_t>(n * ld), 3), c1 = c0, c2 = c0;
      const float* src = trans ? at.data() : a.data();
      cmo::linalg::ssyrk(upper, trans, n, k, 0.5f, src, ld, 0.25f, c1.data(), ld);
      cmo::linalg::ssyrk_portable(upper, trans, n, k, 0.5f, src, ld, 0.25f, c2.data(), ld);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
          const size_t e = static_cast<size_t>(i * ld + j);
          const bool in = upper ? j >= i : j <= i;
          double s = 0;
          for (int64_t p = 0; p < k; ++p)
            s += trans ? static_cast<double>(at[static_cast<size_t>(p * ld + i)]) * at[static_cast<size_t>(p * ld + j)]
                       : static_cast<double>(a[static_cast<size_t>(i * ld + p)]) * a[static_cast<size_t>(j * ld + p)];
          const double want = in ? 0.5 * s + 0.25 * c0[e] : c0[e];
          CHECK_NEAR(c1[e], want, 1e-4);
          CHECK_NEAR(c2[e], want, 1e-4);
        }
    }
  // Well-conditioned upper triangle T; check B·op(T)⁻¹·op(T) = B and T·B against loops.
  const int64_t m = 9;
  auto t = randn(static_cast<size_t>(n * ld), 4, 0.1f);
  for (int64_t i = 0; i < n; ++i) t[static_cast<size_t>(i * ld + i)] = 2.0f + 0.1f * static_cast<float>(i % 5);
  for (int trans = 0; trans < 2; ++trans) {
    auto b = randn(static_cast<size_t>(m * ld), 5), x1 = b, x2 = b;
    cmo::linalg::strsm_right_upper(trans, m, n, t.data(), ld, x1.data(), ld);
    cmo::linalg::strsm_right_upper_portable(trans, m, n, t.data(), ld, x2.data(), ld);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;  // (X · op(T))_rj
        for (int64_t i = 0; i < n; ++i) {
          const double tij = trans ? (i >= j ? t[static_cast<size_t>(j * ld + i)] : 0.0) : (j >= i ? t[static_cast<size_t>(i * ld + j)] : 0.0);
          s += x1[static_cast<size_t>(r * ld + i)] * tij;
        }
        CHECK_NEAR(s, b[static_cast<size_t>(r * ld + j)], 1e-4);
        CHECK_NEAR(x1[static_cast<size_t>(r * ld + j)], x2[static_cast<size_t>(r * ld + j)], 1e-4);
      }
  }
  auto b = randn(static_cast<size_t>(n * ld), 6), y1 = b, y2 = b;
  cmo::linalg::strmm_left_upper(n, m, t.data(), ld, y1.data(), ld);
  cmo::linalg::strmm_left_upper_portable(n, m, t.data(), ld, y2.data(), ld);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) {
      double s = 0;
      for (int64_t p = i; p < n; ++p) s += static_cast<double>(t[static_cast<size_t>(i * ld + p)]) * b[static_cast<size_t>(p * ld + j)];
      CHECK_NEAR(y1[static_cast<size_t>(i * ld + j)], s, 1e-4);
      CHECK_NEAR(y2[static_cast<size_t>(i * ld + j)], s, 1e-4);
    }
}

TEST(lapack_potrf_potri_trtri_match_portable) {
  const int64_t n = 70;
  auto x = randn(static_cast<size_t>(200 * n), 7);
  std::vector<float> a(static_cast<size_t>(n * n), 0.0f);
  cmo::linalg::sgemm(true, false, n, n, 200, 0.01f, x.data(), n, x.data(), n, 0.0f, a.data(), n);
  for (int upper = 0; upper < 2; ++upper) {
    auto f1 = a, f2 = a;
    CHECK_EQ(cmo::linalg::spotrf(upper, n, f1.data(), n), 0);
    CHECK_EQ(cmo::linalg::spotrf_portable(upper, n, f2.data(), n), 0);
    auto i1 = f1, i2 = f2;
    CHECK_EQ(cmo::linalg::spotri(upper, n, i1.data(), n), 0);
    CHECK_EQ(cmo::linalg::spotri_portable(upper, n, i2.data(), n), 0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        if (upper ? j < i : j > i) continue;
        const size_t e = static_cast<size_t>(i * n + j);
        CHECK_NEAR(f1[e], f2[e], 1e-4 * std::fabs(f2[e]) + 1e-5);
        CHECK_NEAR(i1[e], i2[e], 1e-3 * std::fabs(i2[e]) + 1e-4);
      }
    if (upper) {  // triangular inverse of the upper factor: LAPACK vs portable, and U·U⁻¹ = I
      auto t1 = f1, t2 = f1;
      CHECK_EQ(cmo::linalg::strtri_upper(n, t1.data(), n), 0);
      CHECK_EQ(cmo::linalg::strtri_upper_portable(n, t2.data(), n), 0);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = i; j < n; ++j) {
          CHECK_NEAR(t1[static_cast<size_t>(i * n + j)], t2[static_cast<size_t>(i * n + j)], 1e-3 * std::fabs(t2[static_cast<size_t>(i * n + j)]) + 1e-4);
          double s = 0;
          for (int64_t k = i; k <= j; ++k) s += static_cast<double>(f1[static_cast<size_t>(i * n + k)]) * t1[static_cast<size_t>(k * n + j)];
          CHECK_NEAR(s, i == j ? 1.0 : 0.0, 1e-4);
        }
    }
    // A · A⁻¹ = I through the stored triangle.
    auto sym = [&](const std::vector<float>& m, int64_t r, int64_t c) {
      return (upper ? c >= r : c <= r) ? m[static_cast<size_t>(r * n + c)] : m[static_cast<size_t>(c * n + r)];
    };
    for (int64_t i = 0; i < n; i += 7)
      for (int64_t j = 0; j < n; j += 5) {
        double s = 0;
        for (int64_t k = 0; k < n; ++k) s += static_cast<double>(a[static_cast<size_t>(i * n + k)]) * sym(i1, k, j);
        CHECK_NEAR(s, i == j ? 1.0 : 0.0, 1e-3);
      }
  }
}

TEST(add_rows_running_mean_matches_reference) {
  // 300 columns: two 256-tiles (a full one and a ragged one), three batches of different sizes.
  const int64_t n = 300;
  Hessian h(n);
  std::vector<double> ref(static_cast<size_t>(n * n), 0.0);
  int64_t ns = 0;
  const int64_t batches[3][2] = {{40, 2}, {17, 1}, {64, 4}};  // rows, samples
  for (int b = 0; b < 3; ++b) {
    auto x = randn(static_cast<size_t>(batches[b][0] * n), 10 + static_cast<unsigned>(b));
    h.add_rows(x.data(), batches[b][0], batches[b][1]);
    hessian_add_rows_ref(ref, n, ns, x.data(), batches[b][0], batches[b][1]);
  }
  CHECK_EQ(h.samples(), int64_t{7});
  CHECK(rel_diff(h.dense(), ref) < 1e-5);
  // 2/n · Σ x xᵀ, n = 7: a hand check of the scaling on one entry.
  CHECK_EQ(ns, int64_t{7});
}

TEST(conv_unfold_is_the_convolution_and_conv_hessian_matches) {
  // groups 2, padding (1,0,2,1), stride (2,1), dilation (1,2): unfold · flattened weight = direct conv.
  ConvGeometry g;
  g.in_channels = 4;
  g.groups = 2;
  g.kernel_h = 3;
  g.kernel_w = 2;
  g.stride_h = 2;
  g.stride_w = 1;
  g.dilation_h = 1;
  g.dilation_w = 2;
  g.pad_top = 1;
  g.pad_bottom = 0;
  g.pad_left = 2;
  g.pad_right = 1;
  const int64_t batch = 2, H = 7, W = 6, cout_g = 3, cg = 2;
  auto x = randn(static_cast<size_t>(batch * g.in_channels * H * W), 20);
  const int64_t oh = g.out_height(H), ow = g.out_width(W), n = g.columns();
  CHECK_EQ(n, int64_t{12});
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    auto wt = randn(static_cast<size_t>(cout_g * n), 30 + static_cast<unsigned>(grp));
    auto cols = conv_unfold_ref(x.data(), batch, H, W, g, grp);
    CHECK_EQ(static_cast<int64_t>(cols.size()), batch * oh * ow * n);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t o = 0; o < cout_g; ++o)
        for (int64_t oy = 0; oy < oh; ++oy)
          for (int64_t ox = 0; ox < ow; ++ox) {
            double direct = 0;  // plain grouped conv
            for (int64_t c = 0; c < cg; ++c)
              for (int64_t ky = 0; ky < 3; ++ky)
                for (int64_t kx = 0; kx < 2; ++kx) {
                  const int64_t iy = oy * 2 - 1 + ky, ix = ox - 2 + kx * 2;
                  if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                  direct += static_cast<double>(wt[static_cast<size_t>(o * n + (c * 3 + ky) * 2 + kx)]) *
                            x[static_cast<size_t>(((b * 4 + grp * cg + c) * H + iy) * W + ix)];
                }
            double via = 0;
            const int64_t row = (b * oh + oy) * ow + ox;
            for (int64_t k = 0; k < n; ++k) via += static_cast<double>(wt[static_cast<size_t>(o * n + k)]) * cols[static_cast<size_t>(row * n + k)];
            CHECK_NEAR(via, direct, 1e-5);
          }
    Hessian h(n);
    h.add_conv_input(x.data(), batch, H, W, g, grp);
    h.add_conv_input(x.data(), 1, H, W, g, grp);  // a second call: running mean over 3 samples
    std::vector<double> ref(static_cast<size_t>(n * n), 0.0);
    int64_t ns = 0;
    hessian_add_rows_ref(ref, n, ns, cols.data(), batch * oh * ow, batch);
    hessian_add_rows_ref(ref, n, ns, cols.data(), oh * ow, 1);  // image 0's rows come first
    CHECK_EQ(h.samples(), int64_t{3});
    CHECK(rel_diff(h.dense(), ref) < 1e-5);
  }
  ConvGeometry bad = g;
  bad.groups = 3;
  Hessian h(n);
  CHECK_THROWS(h.add_conv_input(x.data(), batch, H, W, bad, 0));
  CHECK_THROWS(h.add_conv_input(x.data(), batch, H, W, g, 2));
}

TEST(factor_equals_three_factorizations) {
  // 600 columns = 3 tiles; rows > columns keeps H well conditioned; two dead columns. Both routes:
  // the tiled one on our pool and the LAPACK one (where linked).
  for (int route = 0; route < 4; ++route) {
    const int permuted = route % 2;
    Hessian::use_lapack_factor(route < 2, 0);  // LAPACK at this size too (its default starts above 2,048)
    const int64_t n = 600, rows = 1500;
    auto x = randn(static_cast<size_t>(rows * n), 40);
    for (int64_t r = 0; r < rows; ++r) x[static_cast<size_t>(r * n + 7)] = x[static_cast<size_t>(r * n + 333)] = 0.0f;
    Hessian h(n);
    h.add_rows(x.data(), rows, 3);
    auto dense = h.dense();
    std::vector<int32_t> perm;
    if (permuted) perm = act_order_permutation(h);
    InverseFactor f = h.factor(0.01, permuted ? &perm : nullptr);
    CHECK_EQ(f.dead_count, int64_t{2});
    CHECK(f.dead[7] == 1 && f.dead[333] == 1 && f.dead[8] == 0);
    // Reference: dead fix, damp, permute, chol → cholesky_inverse → chol(upper) in float64.
    std::vector<double> hd(dense.begin(), dense.end());
    double mean = 0;
    for (int64_t i = 0; i < n; ++i) {
      double& d = hd[static_cast<size_t>(i * n + i)];
      if (d == 0) d = 1;
      mean += d;
    }
    mean /= static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) hd[static_cast<size_t>(i * n + i)] += 0.01 * mean;
    if (permuted) {
      std::vector<double> hp(hd.size());
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) hp[static_cast<size_t>(i * n + j)] = hd[static_cast<size_t>(perm[static_cast<size_t>(i)] * n + perm[static_cast<size_t>(j)])];
      hd = hp;
    }
    auto u_ref = inverse_factor_ref(hd, n);
    auto u = upper_of(f.u, n);
    double m = 0;
    for (size_t e = 0; e < u.size(); ++e) m = std::max(m, std::fabs(u[e] - u_ref[e]));
    CHECK(m / max_abs(u_ref) < 1e-5);
    // H itself is intact after the factor (lower triangle + saved diagonal).
    CHECK(h.dense() == dense);
    // Cached: same dampening → same buffer, no refactor; adding rows drops it.
    CHECK(h.factor(0.01, permuted ? &perm : nullptr).u == f.u);
    CHECK(h.factored());
    h.add_rows(x.data(), 10, 1);
    CHECK(!h.factored());
  }
  Hessian::use_lapack_factor(true);
}

TEST(not_positive_definite_is_a_typed_error_and_keeps_h) {
  Hessian h(3);
  const float x[6] = {1, 2, 3, 1, 2, 3};
  h.add_rows(x, 2, 1);  // rank 1
  float* a = h.data();  // make H indefinite through its lower triangle: H(2,0) huge
  a[2 * 3 + 0] = 100.0f;
  auto before = h.dense();
  bool typed = false;
  try {
    h.factor(0.0);
  } catch (const cmo::Error& e) {
    typed = e.code() == "ENOTPD";
  }
  CHECK(typed);
  CHECK(!h.factored());
  CHECK(h.dense() == before);
}

TEST(all_zero_hessian_is_all_dead) {
  Hessian h(5);
  std::vector<float> zeros(20, 0.0f);
  h.add_rows(zeros.data(), 4, 1);
  InverseFactor f = h.factor(0.01);
  CHECK_EQ(f.dead_count, int64_t{5});
  // H_d = (1 + 0.01)·I → U = I/sqrt(1.01)
  for (int64_t i = 0; i < 5; ++i) CHECK_NEAR(f.u[i * 5 + i], 1.0 / std::sqrt(1.01), 1e-6);
  CHECK_NEAR(f.u[0 * 5 + 3], 0.0, 1e-7);
}

CMO_TEST_MAIN()
